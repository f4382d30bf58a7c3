"""Accounts, tokens and partner keys at the gateway: what gets in and what is refused."""

import time

import httpx
import jwt

from crm_devstack.fixtures import eventually
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
