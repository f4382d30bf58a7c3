"""Sensitive fields by role, and the audit trail of who saw or changed what."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import httpx

from crm_devstack.fixtures import eventually
from crm_devstack.stack import LocalStack
from tests.builders import (
    caller_as,
    create_customer,
    create_store,
)


async def _audit(api: httpx.AsyncClient, customer_id: str) -> list[dict]:
    return (await api.get("/audit", params={"customer_id": customer_id})).json()["items"]


async def test_phone_is_masked_for_staff_and_whole_for_the_manager(api: httpx.AsyncClient) -> None:
    store = await create_store(api)
    customer = await create_customer(api, store_id=store["id"], phone="13812345678")
    async with await caller_as(api, "staff", store_id=store["id"]) as staff:
        seen = (await staff.get(f"/customers/{customer['id']}")).json()
        assert seen["phone"] == "138****5678"
        listed = (await staff.get("/customers", params={"q": "5678"})).json()["items"]
        assert [c["phone"] for c in listed] == ["138****5678"]
    async with await caller_as(api, "store_manager", store_id=store["id"]) as manager:
        response = await manager.get(f"/customers/{customer['id']}")
        assert response.json()["phone"] == "+8613812345678"
        assert "x-crm-audit" not in response.headers  # the gateway keeps it to itself
        listed = (await manager.get("/customers", params={"q": "5678"})).json()["items"]
        assert [c["phone"] for c in listed] == ["+8613812345678"]


async def test_sensitive_reads_and_changes_are_audited(api: httpx.AsyncClient) -> None:
    store = await create_store(api)
    customer = await create_customer(api, store_id=store["id"], phone="13812345678")
    async with await caller_as(api, "staff", store_id=store["id"]) as staff:
        await staff.get(f"/customers/{customer['id']}")  # masked: nothing sensitive disclosed
        changed = await staff.patch(f"/customers/{customer['id']}", json={"name": "王芳芳"})
        assert changed.status_code == 200
    async with await caller_as(api, "store_manager", store_id=store["id"]) as manager:
        read = await manager.get(
            f"/customers/{customer['id']}", headers={"X-Request-ID": "audit-me-1"}
        )
        assert read.status_code == 200
    entries = await _audit(api, customer["id"])
    actions = [(e["action"], e["role"], e["fields"]) for e in entries]
    assert ("create", "hq_admin", ["name", "phone", "store_id"]) in actions
    assert ("update", "staff", ["name"]) in actions
    assert ("read", "store_manager", ["phone"]) in actions
    assert not any(a == "read" and r == "staff" for a, r, _ in actions)
    manager_read = next(e for e in entries if e["role"] == "store_manager")
    assert manager_read["request_id"] == "audit-me-1"
    assert manager_read["resource"] == f"customer/{customer['id']}"
    assert manager_read["at"] and manager_read["actor"]
    by_actor = (await api.get("/audit", params={"actor": manager_read["actor"]})).json()["items"]
    assert [e["id"] for e in by_actor] == [manager_read["id"]]


async def test_stale_if_match_is_412(api: httpx.AsyncClient) -> None:
    store = await create_store(api)
    customer = await create_customer(api, store_id=store["id"])
    read = await api.get(f"/customers/{customer['id']}")
    etag = read.headers["etag"]
    first = await api.patch(
        f"/customers/{customer['id']}", json={"name": "甲"}, headers={"If-Match": etag}
    )
    assert first.status_code == 200 and first.headers["etag"] != etag
    stale = await api.patch(
        f"/customers/{customer['id']}", json={"name": "乙"}, headers={"If-Match": etag}
    )
    assert stale.status_code == 412
    assert (await api.get(f"/customers/{customer['id']}")).json()["name"] == "甲"


async def test_archive_hides_the_file_from_search_but_keeps_it(api: httpx.AsyncClient) -> None:
    store = await create_store(api)
    customer = await create_customer(api, store_id=store["id"])
    assert (await api.delete(f"/customers/{customer['id']}")).status_code == 204
    kept = await api.get(f"/customers/{customer['id']}")
    assert kept.status_code == 200 and kept.json()["status"] == "archived"
    listed = (await api.get("/customers", params={"store_id": store["id"]})).json()["items"]
    assert listed == []
    assert ("archive", ["status"]) in [
        (e["action"], e["fields"]) for e in await _audit(api, customer["id"])
    ]


VALID_ID = "11010519491231002X"


async def test_health_needs_consent_is_encrypted_and_shown_by_role(
    stack: LocalStack, api: httpx.AsyncClient
) -> None:
    store = await create_store(api)
    health = {"allergies": ["青霉素"], "chronic_conditions": ["高血压"]}
    refused = await api.post(
        "/customers", json={"store_id": store["id"], "name": "赵", "health": health}
    )
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "health"
    bad_id = await api.post(
        "/customers",
        json={"store_id": store["id"], "name": "赵", "id_number": "110105194912310021"},
    )
    assert bad_id.status_code == 422
    customer = await create_customer(
        api, store_id=store["id"], health=health, health_consent=True, id_number=VALID_ID.lower()
    )
    # At rest the database holds ciphertext only.
    conn = await asyncpg.connect(stack.postgres.url("crm_customer", driver="postgresql"))
    try:
        row = await conn.fetchrow(
            "SELECT id_number_encrypted, health_encrypted FROM customer WHERE id = $1",
            customer["id"],
        )
    finally:
        await conn.close()
    assert VALID_ID not in row["id_number_encrypted"] and "青霉素" not in row["health_encrypted"]

    async with await caller_as(api, "expert", store_id=store["id"]) as expert:
        seen = (await expert.get(f"/customers/{customer['id']}")).json()
        assert seen["health"]["allergies"] == ["青霉素"] and seen["id_number"] is None
    async with await caller_as(api, "staff", store_id=store["id"]) as staff:
        seen = (await staff.get(f"/customers/{customer['id']}")).json()
        assert seen["health"] is None and seen["id_number"] is None
    async with await caller_as(api, "store_manager", store_id=store["id"]) as manager:
        seen = (await manager.get(f"/customers/{customer['id']}")).json()
        assert seen["id_number"] == VALID_ID
    hq = (await api.get(f"/customers/{customer['id']}")).json()
    assert hq["id_number"] == "110***********002X"
    reads = [e for e in await _audit(api, customer["id"]) if e["action"] == "read"]
    assert ("expert", ["health"]) in [(e["role"], e["fields"]) for e in reads]
    assert ("store_manager", ["id_number", "health"]) in [(e["role"], e["fields"]) for e in reads]
    assert ("hq_admin", []) not in [(e["role"], e["fields"]) for e in reads]

    # Withdrawing consent deletes the health data.
    withdrawn = await api.patch(f"/customers/{customer['id']}", json={"health_consent": False})
    assert withdrawn.status_code == 200 and withdrawn.json()["health"] is None


@asynccontextmanager
async def _gateway_database_away(stack: LocalStack) -> AsyncIterator[None]:
    """The gateway's database refuses every connection (its open ones are cut) until the end."""
    conn = await asyncpg.connect(stack.postgres.url("postgres", driver="postgresql"))
    try:
        await conn.execute("ALTER DATABASE crm_gateway ALLOW_CONNECTIONS false")
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'crm_gateway'"
        )
        yield
    finally:
        await conn.execute("ALTER DATABASE crm_gateway ALLOW_CONNECTIONS true")
        await conn.close()


async def test_a_committed_write_keeps_its_answer_and_its_audit_when_the_audit_database_is_away(
    stack: LocalStack, api: httpx.AsyncClient
) -> None:
    store = await create_store(api)
    customer = await create_customer(api, store_id=store["id"], phone="13812345678")
    manager = await caller_as(api, "store_manager", store_id=store["id"])
    async with manager, _gateway_database_away(stack):
        changed = await manager.patch(
            f"/customers/{customer['id']}",
            json={"name": "李四"},
            headers={"X-Request-ID": "spooled-write-1"},
        )
        # Committed by the service: a 503 would invite a retry that repeats the write.
        assert changed.status_code == 200, changed.text
        assert changed.json()["name"] == "李四"
        # A read can be retried: it is refused before anything is disclosed.
        read = await manager.get(f"/customers/{customer['id']}")
        assert read.status_code == 503 and "13812345678" not in read.text

    async def spooled_entries() -> list[dict]:
        entries = await _audit(api, customer["id"])
        return [e for e in entries if e["request_id"] == "spooled-write-1"]

    recorded = await eventually(spooled_entries, timeout=30)
    assert {(e["action"], e["role"], tuple(e["fields"]), e["status"]) for e in recorded} == {
        ("update", "store_manager", ("name",), 200),
        ("read", "store_manager", ("phone",), 200),
    }


async def test_masked_roles_search_phones_by_the_last_four_digits_or_the_whole_number(
    api: httpx.AsyncClient,
) -> None:
    store = await create_store(api)
    customer = await create_customer(api, store_id=store["id"], phone="13812345678")
    async with await caller_as(api, "staff", store_id=store["id"]) as staff:
        for q in ("5678", "13812345678", "+86 138 1234 5678"):
            found = await staff.get("/customers", params={"q": q, "store_id": store["id"]})
            assert found.status_code == 200, (q, found.text)
            assert [c["id"] for c in found.json()["items"]] == [customer["id"]], q
        # Growing the tail one digit at a time would recover the whole number.
        for q in ("45678", "345678", "2345678", "812345678", "8", "678"):
            refused = await staff.get("/customers", params={"q": q})
            assert refused.status_code == 422, (q, refused.text)
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert refused.json()["errors"][0]["field"] == "q"
        # Names are still searched as before.
        assert (await staff.get("/customers", params={"q": "王"})).status_code == 200
    async with await caller_as(api, "store_manager", store_id=store["id"]) as manager:
        found = await manager.get("/customers", params={"q": "2345678", "store_id": store["id"]})
        assert [c["id"] for c in found.json()["items"]] == [customer["id"]]
