"""Accounts, tokens and partner keys at the gateway: what gets in and what is refused."""

import asyncio
import hashlib
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import asyncpg
import httpx
import jwt
import pytest

from crm_devstack.fixtures import eventually, throwaway_stack
from crm_devstack.stack import LocalStack
from tests.builders import client_as, create_account, create_customer, create_store, sign_in

DEV_JWT_SECRET = "dev-only-jwt-secret-change-me-0123456789abcdef"  # the gateway's development key


async def test_no_or_malformed_credentials_are_401(anonymous: httpx.AsyncClient) -> None:
    for headers in (
        {},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer"},
        {"X-API-Key": "nope"},
    ):
        response = await anonymous.get("/stores", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_sign_in_refresh_and_token_checks(api: httpx.AsyncClient) -> None:
    store = await create_store(api)
    account = await create_account(api, role="staff", store_id=store["id"])
    tokens = await sign_in(api, account)
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] > 0
    async with client_as(api, token=tokens["access_token"]) as staff:
        assert (await staff.get("/stores")).status_code == 200

    refreshed = await api.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    # A refresh token works once.
    again = await api.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert again.status_code == 401

    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    expired = jwt.encode(
        {**claims, "exp": int(time.time()) - 10}, DEV_JWT_SECRET, algorithm="HS256"
    )
    forged = jwt.encode(
        {**claims, "role": "hq_admin"}, "not-the-key-not-the-key-not-the-key", algorithm="HS256"
    )
    unsigned = jwt.encode({**claims, "role": "hq_admin"}, None, algorithm="none")
    for token in (expired, forged, unsigned, tokens["access_token"] + "x"):
        async with client_as(api, token=token) as client:
            assert (await client.get("/stores")).status_code == 401


async def test_wrong_passwords_back_off(api: httpx.AsyncClient) -> None:
    store = await create_store(api)
    account = await create_account(api, role="staff", store_id=store["id"])
    for _ in range(5):
        wrong = await api.post(
            "/auth/token", json={"username": account["username"], "password": "wrong password!"}
        )
        assert wrong.status_code == 401
    locked = await api.post(
        "/auth/token", json={"username": account["username"], "password": account["password"]}
    )
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 0
    unknown = await api.post(
        "/auth/token", json={"username": "nobody-at-all", "password": "whatever12345"}
    )
    assert unknown.status_code == 401


async def test_disabled_account_is_refused_at_once(api: httpx.AsyncClient) -> None:
    store = await create_store(api)
    account = await create_account(api, role="staff", store_id=store["id"])
    tokens = await sign_in(api, account)
    async with client_as(api, token=tokens["access_token"]) as staff:
        assert (await staff.get("/stores")).status_code == 200
        disabled = await api.patch(f"/accounts/{account['id']}", json={"status": "disabled"})
        assert disabled.status_code == 200
        assert (await staff.get("/stores")).status_code == 401
    refused = await api.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refused.status_code == 401


async def test_a_remembered_token_still_ends_at_a_password_change_and_at_its_expiry(
    api: httpx.AsyncClient,
) -> None:
    # The gateway keeps verified tokens in memory: neither revocation nor expiry may wait for it.
    store = await create_store(api)
    account = await create_account(api, role="staff", store_id=store["id"])
    token = (await sign_in(api, account))["access_token"]
    async with client_as(api, token=token) as staff:
        for _ in range(3):
            assert (await staff.get("/stores")).status_code == 200
        changed = await api.patch(f"/accounts/{account['id']}", json={"password": "x" * 20})
        assert changed.status_code == 200
        assert (await staff.get("/stores")).status_code == 401

    claims = jwt.decode(
        (await sign_in(api, {**account, "password": "x" * 20}))["access_token"],
        options={"verify_signature": False},
    )
    short = jwt.encode({**claims, "exp": int(time.time()) + 2}, DEV_JWT_SECRET, algorithm="HS256")
    async with client_as(api, token=short) as staff:
        assert (await staff.get("/stores")).status_code == 200

        async def refused() -> bool:
            return (await staff.get("/stores")).status_code == 401

        assert await eventually(refused, timeout=15, interval=0.5)


async def test_partner_key_shown_once_scoped_to_its_store_and_revoked_at_once(
    api: httpx.AsyncClient,
) -> None:
    store, other = await create_store(api), await create_store(api)
    mine = await create_customer(api, store_id=store["id"])
    theirs = await create_customer(api, store_id=other["id"])
    issued = await api.post("/api-keys", json={"store_id": store["id"], "name": "till system"})
    assert issued.status_code == 201
    key = issued.json()["key"]
    assert key.startswith("crm_" + issued.json()["prefix"])
    listed = (await api.get("/api-keys")).json()["items"]
    assert all("key" not in item for item in listed)
    async with client_as(api, key=key) as partner:
        assert (await partner.get(f"/customers/{mine['id']}")).status_code == 200
        assert (await partner.get(f"/customers/{theirs['id']}")).status_code == 404
        revoked = await api.delete(f"/api-keys/{issued.json()['id']}")
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]
        assert (await partner.get(f"/customers/{mine['id']}")).status_code == 401

    async def last_used() -> str | None:
        listed = (await api.get("/api-keys", params={"limit": 500})).json()["items"]
        return next(i for i in listed if i["id"] == issued.json()["id"])["last_used_at"]

    assert await eventually(last_used, timeout=20)


async def test_partner_keys_are_rate_limited(api: httpx.AsyncClient) -> None:
    store = await create_store(api)
    issued = (await api.post("/api-keys", json={"store_id": store["id"], "name": "batch"})).json()
    async with client_as(api, key=issued["key"]) as partner:
        statuses = [(await partner.get("/stores")).status_code for _ in range(45)]
        assert statuses[:40] == [200] * 40  # the test stack allows 40 a minute per key
        limited = await partner.get("/stores")
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1


async def test_store_managers_manage_only_their_own_store(api: httpx.AsyncClient) -> None:
    store, other = await create_store(api), await create_store(api)
    manager = await create_account(api, role="store_manager", store_id=store["id"])
    async with client_as(api, token=(await sign_in(api, manager))["access_token"]) as client:
        body = {"username": "x" + store["id"][-8:], "password": "a long password", "role": "staff"}
        assert (
            await client.post("/accounts", json={**body, "store_id": store["id"]})
        ).status_code == 201
        assert (
            await client.post(
                "/accounts",
                json={**body, "store_id": other["id"], "username": "y" + store["id"][-8:]},
            )
        ).status_code == 403
        assert (
            await client.post(
                "/accounts", json={**body, "role": "hq_admin", "username": "z" + store["id"][-8:]}
            )
        ).status_code == 403
        assert (
            await client.post("/api-keys", json={"store_id": other["id"], "name": "x"})
        ).status_code == 403
        assert (await client.get("/audit")).status_code == 403
        accounts = (await client.get("/accounts")).json()["items"]
        assert {a["store_id"] for a in accounts} == {store["id"]}


async def test_security_headers_and_cors(stack: LocalStack, api: httpx.AsyncClient) -> None:
    response = await api.get("/stores")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    preflight = await api.options(
        "/stores",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    allowed = await api.options(
        "/stores",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"},
    )
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"


async def test_accounts_and_keys_only_for_stores_that_exist(api: httpx.AsyncClient) -> None:
    account = {"username": "ghost-staff", "password": "a long password", "role": "staff"}
    refused = await api.post("/accounts", json={**account, "store_id": "no-such-store"})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "store_id"
    key = await api.post("/api-keys", json={"store_id": "no/such store", "name": "x"})
    assert key.status_code == 422
    store = await create_store(api)
    assert (
        await api.post("/api-keys", json={"store_id": store["id"], "name": "x"})
    ).status_code == 201


async def test_unknown_key_prefixes_are_remembered_until_a_key_is_announced(
    stack: LocalStack, api: httpx.AsyncClient
) -> None:
    store = await create_store(api)
    prefix, secret = secrets.token_hex(4), secrets.token_urlsafe(32)
    async with client_as(api, key=f"crm_{prefix}_{secret}") as partner:
        assert (await partner.get("/stores")).status_code == 401
        conn = await asyncpg.connect(stack.postgres.url("crm_gateway", driver="postgresql"))
        try:
            # A key with that prefix appears without the announcement every issued key makes:
            # the gateway does not look the prefix up again while it remembers it as unknown.
            await conn.execute(
                "INSERT INTO api_key (id, store_id, name, prefix, key_hash, created_by)"
                " VALUES ($1, $2, 'late', $3, $4, 'test')",
                str(uuid.uuid4()),
                store["id"],
                prefix,
                hashlib.sha256(secret.encode()).hexdigest(),
            )
            assert (await partner.get("/stores")).status_code == 401
            await conn.execute("SELECT pg_notify('crm_credentials', $1)", f"key:{prefix}")
        finally:
            await conn.close()

        async def admitted() -> bool:
            return (await partner.get("/stores")).status_code == 200

        assert await eventually(admitted, timeout=10)


# A stack of its own: these tests restart the gateway, add a replica and use up sign-ins.
SIGN_IN_LIMIT = 12


@pytest.fixture(scope="module")
def own_stack() -> Iterator[LocalStack]:
    with throwaway_stack(
        {
            "CRM_RATE_LIMIT": "1000000/minute",
            "CRM_SIGN_IN_RATE_LIMIT": f"{SIGN_IN_LIMIT}/minute",
            "CRM_TRUSTED_PROXIES": '["10.0.0.0/8"]',
        }
    ) as local:
        yield local


@asynccontextmanager
async def _head_office(base_url: str, password: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url + "/api/v1", timeout=30) as client:
        signed_in = await client.post(
            "/auth/token", json={"username": "admin", "password": password}
        )
        assert signed_in.status_code == 200, signed_in.text
        client.headers["Authorization"] = f"Bearer {signed_in.json()['access_token']}"
        yield client


async def test_a_role_change_outlives_a_gateway_restart(own_stack: LocalStack) -> None:
    async with _head_office(own_stack.url("gateway"), own_stack.admin_password) as api:
        store = await create_store(api)
        account = await create_account(api, role="staff", store_id=store["id"])
        old_token = (await sign_in(api, account))["access_token"]
        changed = await api.patch(f"/accounts/{account['id']}", json={"role": "store_manager"})
        assert changed.status_code == 200
    await asyncio.to_thread(own_stack.stop_service, "gateway")
    await asyncio.to_thread(own_stack.start_service, "gateway")
    await asyncio.to_thread(own_stack.wait_healthy, "gateway")
    async with _head_office(own_stack.url("gateway"), own_stack.admin_password) as api:
        async with client_as(api, token=old_token) as staff:
            assert (await staff.get("/stores")).status_code == 401
        async with client_as(api, token=(await sign_in(api, account))["access_token"]) as manager:
            assert (await manager.get("/stores")).status_code == 200


async def test_a_second_replica_refuses_old_tokens_at_once(own_stack: LocalStack) -> None:
    replica = await asyncio.to_thread(own_stack.start_service, "gateway", replica="second")
    try:
        args = list(map(str, own_stack.processes[replica].args))
        replica_url = f"http://127.0.0.1:{args[args.index('--port') + 1]}/api/v1"

        async def replica_ready() -> bool:
            try:
                async with httpx.AsyncClient() as probe:
                    ready = await probe.get(replica_url.removesuffix("/api/v1") + "/readyz")
                    return ready.status_code == 200
            except httpx.HTTPError:
                return False

        await eventually(replica_ready, timeout=60, interval=0.3)
        async with _head_office(own_stack.url("gateway"), own_stack.admin_password) as api:
            store, other = await create_store(api), await create_store(api)
            account = await create_account(api, role="staff", store_id=store["id"])
            changes = (
                {"password": "another long password"},
                {"store_id": other["id"]},
                {"status": "disabled"},
            )
            for change in changes:
                token = (await sign_in(api, account))["access_token"]
                async with httpx.AsyncClient(
                    base_url=replica_url, headers={"Authorization": f"Bearer {token}"}
                ) as on_replica:
                    assert (await on_replica.get("/stores")).status_code == 200
                    # Changed through the first replica; refused by the second at once.
                    patched = await api.patch(f"/accounts/{account['id']}", json=change)
                    assert patched.status_code == 200, patched.text
                    assert (await on_replica.get("/stores")).status_code == 401, change
                account["password"] = change.get("password", account["password"])
    finally:
        await asyncio.to_thread(own_stack.stop_service, replica)


async def test_a_forged_x_forwarded_for_does_not_escape_the_sign_in_limit(
    own_stack: LocalStack,
) -> None:
    # Last on this stack: it uses up the sign-in attempts of 127.0.0.1 for a minute.
    async with httpx.AsyncClient(base_url=own_stack.url("gateway") + "/api/v1") as client:
        statuses = [
            (
                await client.post(
                    "/auth/token",
                    json={"username": "nobody-at-all", "password": "wrong password!"},
                    headers={"X-Forwarded-For": f"198.51.100.{n}"},
                )
            ).status_code
            for n in range(SIGN_IN_LIMIT + 1)
        ]
    # The peer (127.0.0.1) is no trusted proxy: every attempt counts against it.
    assert statuses[-1] == 429, statuses
