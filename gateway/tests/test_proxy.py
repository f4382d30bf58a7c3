"""What the proxy sends on: the path as the client encoded it, redirects into the public API."""

from crm_gateway.proxy import public_location, upstream_target

BASE = "http://127.0.0.1:8001"


def scope(raw_path: bytes, query: bytes = b"") -> dict[str, object]:
    return {"path": raw_path.decode("latin-1"), "raw_path": raw_path, "query_string": query}


def test_the_path_and_query_go_on_as_sent_after_the_prefix() -> None:
    assert upstream_target(scope(b"/api/v1/customers/a%2F..%2Fx")) == "/customers/a%2F..%2Fx"
    assert upstream_target(scope(b"/api/v1/stores", b"limit=5&cursor=a%3D")) == (
        "/stores?limit=5&cursor=a%3D"
    )


def test_bytes_a_url_cannot_hold_are_encoded_and_a_hash_does_not_cut_the_path() -> None:
    # "#" would end the path at the service: /customers/x#/score would be read as /customers/x.
    assert upstream_target(scope(b"/api/v1/customers/x#/score")) == "/customers/x%23/score"
    assert upstream_target(scope(b"/api/v1/staff/\xc3\x91 x")) == "/staff/%C3%91%20x"


def test_redirects_point_into_the_api() -> None:
    assert public_location(f"{BASE}/stores".encode(), BASE) == b"/api/v1/stores"
    assert public_location(b"/stores?limit=5", BASE) == b"/api/v1/stores?limit=5"
    elsewhere = b"https://example.com/stores"
    assert public_location(elsewhere, BASE) == elsewhere
    assert public_location(b"//example.com/x", BASE) == b"//example.com/x"
