"""Builders for test data, created through the public API."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

_counter = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_counter)}{uuid.uuid4().hex[:6]}"


async def create_store(
    api: httpx.AsyncClient, *, timezone: str = "Asia/Shanghai"
) -> dict[str, Any]:
    response = await api.post(
        "/stores", json={"code": unique("S"), "name": "Health store", "timezone": timezone}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def create_product(
    api: httpx.AsyncClient, *, unit_price: str = "100.00", days_per_unit: int = 30
) -> dict[str, Any]:
    response = await api.post(
        "/products",
        json={
            "sku": unique("SKU"),
            "name": "Fish oil",
            "category": "supplements",
            "unit_price": unit_price,
            "days_per_unit": days_per_unit,
        },
    )
    assert response.status_code == 201, response.text
    return response.json()


async def create_customer(
    api: httpx.AsyncClient, *, store_id: str, **fields: Any
) -> dict[str, Any]:
    body = {"store_id": store_id, "name": "王芳", **fields}
    response = await api.post("/customers", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def create_import(api: httpx.AsyncClient, *, store_id: str) -> dict[str, Any]:
    """A customer import job of one row (uploaded as CSV) in the store."""
    content = f"姓名,手机\n{unique('导入')},\n".encode()
    response = await api.post(
        "/imports",
        data={"store_id": store_id, "kind": "customers"},
        files={"file": ("customers.csv", content, "text/csv")},
    )
    assert response.status_code == 202, response.text
    job: dict[str, Any] = response.json()
    return job


async def create_staff(api: httpx.AsyncClient, *, store_id: str) -> dict[str, Any]:
    response = await api.post(
        "/staff", json={"store_id": store_id, "name": "李娜", "role": "staff"}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def record_purchase(
    api: httpx.AsyncClient,
    *,
    customer_id: str,
    sku: str,
    qty: int = 1,
    unit_price: str | None = None,
    purchased_at: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    item: dict[str, Any] = {"sku": sku, "qty": qty}
    if unit_price is not None:
        item["unit_price"] = unit_price
    response = await api.post(
        f"/customers/{customer_id}/purchases",
        json={"purchased_at": purchased_at or days_ago(1), "items": [item], **extra},
    )
    assert response.status_code == 201, response.text
    return response.json()


async def score_of(api: httpx.AsyncClient, customer_id: str) -> dict[str, Any] | None:
    response = await api.get(f"/customers/{customer_id}/score")
    return response.json() if response.status_code == 200 else None


def analysis_answer(response: httpx.Response) -> dict[str, Any] | None:
    """An analysis answer, or None while the store's data is on its way: scoring may take a
    file's registration (today) before its back-dated purchases, and until then a period
    before this month is one the store's data cannot answer yet (422)."""
    if response.status_code == 422 and "the store's first data" in response.text:
        return None
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def days_ago(days: int) -> str:
    """An ISO time ``days`` before now (the trailing windows are relative to today)."""
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


async def score_with_purchases(
    api: httpx.AsyncClient, customer_id: str, count: int = 1, *, timeout: float = 60
) -> dict[str, Any]:
    """The customer's score once ``count`` purchases have been scored."""
    from crm_devstack.fixtures import eventually

    async def reached() -> dict[str, Any] | None:
        score = await score_of(api, customer_id)
        return score if score and score["stats"]["purchase_count"] >= count else None

    return await eventually(reached, timeout=timeout)


async def create_account(
    api: httpx.AsyncClient,
    *,
    role: str,
    store_id: str | None,
    password: str = "correct horse battery",
    staff_id: str | None = None,
) -> dict[str, Any]:
    body = {"username": unique(role), "password": password, "role": role, "store_id": store_id}
    if staff_id is not None:
        body["staff_id"] = staff_id
    response = await api.post("/accounts", json=body)
    assert response.status_code == 201, response.text
    return {**response.json(), "password": password}


async def sign_in(api: httpx.AsyncClient, account: dict[str, Any]) -> dict[str, Any]:
    response = await api.post(
        "/auth/token", json={"username": account["username"], "password": account["password"]}
    )
    assert response.status_code == 200, response.text
    return response.json()


def client_as(
    api: httpx.AsyncClient, *, token: str | None = None, key: str | None = None
) -> httpx.AsyncClient:
    """Another client of the same API with other credentials."""
    headers = {"Authorization": f"Bearer {token}"} if token else {"X-API-Key": key or ""}
    return httpx.AsyncClient(base_url=str(api.base_url), headers=headers, timeout=30)


async def caller_as(
    api: httpx.AsyncClient, role: str, *, store_id: str | None, **account: Any
) -> httpx.AsyncClient:
    """A client of a new account of ``role`` in the store, signed in (for ``partner``, of a new
    API key of the store); ``account`` adds to the account's fields (a ``staff_id``)."""
    if role == "partner":
        key = await api.post("/api-keys", json={"store_id": store_id, "name": unique("key")})
        assert key.status_code == 201, key.text
        return client_as(api, key=key.json()["key"])
    signed = await create_account(api, role=role, store_id=store_id, **account)
    return client_as(api, token=(await sign_in(api, signed))["access_token"])


async def scored_customer(
    api: httpx.AsyncClient,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A new store's customer who bought one of a new product: the store, the product, the
    customer and the customer's score once scoring has the purchase."""
    store = await create_store(api)
    product = await create_product(api)
    customer = await create_customer(api, store_id=store["id"])
    await record_purchase(api, customer_id=customer["id"], sku=product["sku"])
    return store, product, customer, await score_with_purchases(api, customer["id"])
