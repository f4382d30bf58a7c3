import re

from crm_gateway.openapi import merge_documents
from crm_gateway.principal_forwarding import PrincipalSigner
from crm_gateway.routes import ROUTES, owner_of
from crm_libs.principal import Principal, Role, verify_principal


def test_paths_go_to_their_owning_service() -> None:
    assert owner_of("/customers/abc/score") == "scoring"
    assert owner_of("/customers/abc") == "customer"
    assert owner_of("/customers/abc/purchases") == "customer"
    assert owner_of("/purchases/abc/refund") == "customer"
    assert owner_of("/stores") == "customer"
    assert owner_of("/tasks") == "engagement"
    assert owner_of("/nowhere") is None
    assert owner_of("/customersx") is None


def _service_paths() -> dict[str, list[str]]:
    """Each service's own OpenAPI paths, with a sample value for every path parameter."""
    from customer_service.main import create_app as customer_app
    from engagement_service.main import create_app as engagement_app
    from scoring_service.main import create_app as scoring_app

    apps = {"customer": customer_app, "engagement": engagement_app, "scoring": scoring_app}
    return {
        name: [re.sub(r"{[^}]+}", "id1", path) for path in create_app().openapi()["paths"]]
        for name, create_app in apps.items()
    }


def test_the_gateway_routes_what_the_services_serve_and_nothing_more() -> None:
    served = _service_paths()
    for service, paths in served.items():
        for path in paths:
            assert owner_of(path) == service, path
    # Every route leads to something its service answers: nothing advertised ahead of it.
    for route in ROUTES:
        assert any(route.pattern.match(path) for path in served[route.service]), route


def test_merge_prefixes_paths_and_renames_clashing_schemas() -> None:
    ref = {"$ref": "#/components/schemas/Thing"}
    documents = {
        "customer": {
            "paths": {"/stores": {"get": {"responses": {"200": ref}}}, "/tasks": {}},
            "components": {"schemas": {"Thing": {"type": "object"}}},
        },
        "engagement": {
            "paths": {"/tasks": {"get": {"responses": {"200": ref}}}},
            "components": {"schemas": {"Thing": {"type": "string"}}},
        },
    }
    merged = merge_documents(documents, title="t", version="1")
    assert set(merged["paths"]) == {"/api/v1/stores", "/api/v1/tasks"}  # /tasks is not customer's
    schemas = merged["components"]["schemas"]
    assert schemas["Thing"] == {"type": "object"}
    assert schemas["engagement_Thing"] == {"type": "string"}
    task_ref = merged["paths"]["/api/v1/tasks"]["get"]["responses"]["200"]["$ref"]
    assert task_ref.endswith("engagement_Thing")


def test_signer_reuses_tokens_per_principal() -> None:
    signer = PrincipalSigner(secret="k" * 40, ttl_seconds=60)
    staff = Principal(subject="u", role=Role.STAFF, store_id="s")
    token = signer.token_for(staff)
    assert signer.token_for(staff) == token
    assert signer.token_for(Principal(subject="v", role=Role.STAFF, store_id="s")) != token
    assert verify_principal(token, secret="k" * 40) == staff


def test_client_credentials_never_reach_the_services() -> None:
    from crm_gateway.proxy import forwarded_headers
    from crm_libs.principal import PRINCIPAL_HEADER

    incoming = [
        ("Authorization", "Bearer client-token"),
        ("X-API-Key", "crm_abcdefgh_secret"),
        ("Cookie", "session=1"),
        (PRINCIPAL_HEADER, "smuggled"),
        ("Host", "example"),
        ("Idempotency-Key", "k1"),
        ("If-Match", '"3"'),
        ("Content-Type", "application/json"),
    ]
    out = forwarded_headers(incoming, "signed", "rid-1")
    names = [k.lower() for k, _ in out]
    assert not {"authorization", "x-api-key", "cookie", "host"} & set(names)
    assert (PRINCIPAL_HEADER, "signed") in out and names.count(PRINCIPAL_HEADER.lower()) == 1
    assert ("x-request-id", "rid-1") in out
    assert ("Idempotency-Key", "k1") in out and ("If-Match", '"3"') in out


async def test_concurrent_requests_with_one_key_share_one_lookup() -> None:
    import asyncio

    from crm_gateway.auth.authenticate import Authenticator, CachedKey
    from crm_gateway.config import Settings

    authenticator = Authenticator(settings=Settings(), sessionmaker=None)  # type: ignore[arg-type]
    lookups = 0

    async def slow_lookup(prefix: str) -> CachedKey | None:
        nonlocal lookups
        lookups += 1
        await asyncio.sleep(0.05)
        return None

    authenticator._load_key = slow_lookup  # type: ignore[method-assign]
    results = await asyncio.gather(*(authenticator._load_key_once("abcd1234") for _ in range(32)))
    assert results == [None] * 32 and lookups == 1
