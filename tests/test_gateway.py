"""The gateway's own behaviour: request IDs, routing, service outages, one API document."""

import asyncio
import json
import uuid

import httpx
import jwt

from crm_devstack.stack import LocalStack
from crm_libs.principal import PRINCIPAL_HEADER, Principal, Role, sign_principal
from crm_libs.settings import DEV_PRINCIPAL_SECRET
from tests.builders import create_store


async def test_request_id_is_echoed_or_minted(api: httpx.AsyncClient) -> None:
    response = await api.get("/stores", headers={"X-Request-ID": "phone-abc-123"})
    assert response.headers["x-request-id"] == "phone-abc-123"
    minted = await api.get("/stores")
    assert len(minted.headers["x-request-id"]) >= 16
    unknown = await api.get("/nowhere")
    assert unknown.status_code == 404 and unknown.headers["x-request-id"]


async def test_health_and_readiness(stack: LocalStack) -> None:
    async with httpx.AsyncClient(base_url=stack.url("gateway")) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = (await client.get("/readyz")).json()
        assert ready["status"] == "ready"
        assert set(ready["services"]) == {"customer", "engagement", "scoring"}


async def test_service_down_is_503_problem_and_recovers(
    stack: LocalStack, api: httpx.AsyncClient
) -> None:
    stack.stop_service("engagement")
    try:
        response = await api.get("/tasks")
        assert response.status_code == 503
        assert response.headers["content-type"].startswith("application/problem+json")
        assert (await api.get("/stores")).status_code == 200  # the others still answer
    finally:
        stack.start_service("engagement")
        stack.wait_healthy("engagement")
    assert (await api.get("/tasks")).status_code == 200


async def test_merged_openapi_document_lists_every_service(stack: LocalStack) -> None:
    async with httpx.AsyncClient(base_url=stack.url("gateway")) as client:
        document = (await client.get("/openapi.json")).json()
        paths = document["paths"]
        for path in (
            "/api/v1/customers/{customer_id}/purchases",
            "/api/v1/customers/{customer_id}/score",
            "/api/v1/tasks",
            "/api/v1/stores",
        ):
            assert path in paths, path
        assert "swagger" in (await client.get("/docs")).text.lower()


async def test_services_refuse_missing_or_forged_principals(
    stack: LocalStack, api: httpx.AsyncClient
) -> None:
    await create_store(api)
    direct = stack.url("customer")
    hq = Principal(subject="x", role=Role.HQ_ADMIN)
    async with httpx.AsyncClient(base_url=direct) as client:
        assert (await client.get("/stores")).status_code == 401
        forged = sign_principal(hq, secret="another-secret-another-secret-another-secret")
        assert (await client.get("/stores", headers={PRINCIPAL_HEADER: forged})).status_code == 401
        expired = sign_principal(hq, secret=DEV_PRINCIPAL_SECRET, ttl_seconds=-5)
        assert (await client.get("/stores", headers={PRINCIPAL_HEADER: expired})).status_code == 401
        unsigned = jwt.encode(
            {"sub": "x", "role": "hq_admin", "aud": "crm-services"}, "", algorithm="none"
        )
        assert (
            await client.get("/stores", headers={PRINCIPAL_HEADER: unsigned})
        ).status_code == 401
        good = sign_principal(hq, secret=DEV_PRINCIPAL_SECRET)
        assert (await client.get("/stores", headers={PRINCIPAL_HEADER: good})).status_code == 200


async def test_a_client_cannot_smuggle_its_own_principal(api: httpx.AsyncClient) -> None:
    # The gateway replaces whatever principal header a caller sends with its own.
    response = await api.get("/stores", headers={PRINCIPAL_HEADER: "garbage"})
    assert response.status_code == 200


async def test_large_bodies_stream_through_to_the_service(api: httpx.AsyncClient) -> None:
    store = await create_store(api)
    huge_name = "张" * 600_000  # ~1.8 MB of UTF-8: streamed, and refused by the service
    response = await api.post("/customers", json={"store_id": store["id"], "name": huge_name})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "name"


async def test_encoded_paths_are_forwarded_as_sent_never_a_500(api: httpx.AsyncClient) -> None:
    # Once the decoded path was forwarded: %00 became a NUL the upstream URL refused (500).
    for path in (
        "/customers/%00",
        "/stores/%1Ac%C2%B9",
        "/customers/a%2F..%2Fstores",
        "/staff/%C3%91",
    ):
        response = await api.get(path)
        assert response.status_code in (400, 404), (path, response.status_code, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_services_redirect_points_into_the_public_api_not_at_the_service(
    stack: LocalStack, api: httpx.AsyncClient
) -> None:
    # The service redirects /stores/ to /stores by its own address: the client must not learn
    # it (nor be sent past the gateway), but be sent to the same resource through the API.
    response = await api.get("/stores/")
    assert response.status_code == 307
    assert response.headers["location"] == "/api/v1/stores"
    assert stack.url("customer") not in response.text
    followed = await api.get(stack.url("gateway") + response.headers["location"])
    assert followed.status_code == 200


async def test_a_body_cut_short_by_the_client_never_reaches_the_service(
    stack: LocalStack, api: httpx.AsyncClient, admin_token: str
) -> None:
    listed = (await create_store(api))["code"]  # the listing below must find stores at all
    code = f"CUT-{uuid.uuid4().hex[:8]}"
    body = json.dumps({"code": code, "name": "Cut short", "timezone": "Asia/Shanghai"}).encode()
    # The client promises more than it sends, then goes away: what arrived is valid JSON, but
    # not the request the client meant to make.
    head = (
        "POST /api/v1/stores HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {admin_token}\r\nContent-Length: {len(body) + 40}\r\n\r\n"
    ).encode()
    _, writer = await asyncio.open_connection("127.0.0.1", stack.ports.gateway)
    writer.write(head + body)
    await writer.drain()
    await asyncio.sleep(0.3)  # the gateway has read what was sent
    writer.close()
    await writer.wait_closed()
    await asyncio.sleep(1.0)  # a forwarded body would have become a store by now
    codes, cursor = set(), None
    while True:
        page = (await api.get("/stores", params={"cursor": cursor} if cursor else {})).json()
        codes |= {store["code"] for store in page["items"]}
        if not (cursor := page["next_cursor"]):
            break
    assert listed in codes and code not in codes
