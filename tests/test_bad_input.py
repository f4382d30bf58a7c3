"""Bad input gets a clear 4xx problem and writes nothing."""

import httpx

from tests.builders import (
    create_account,
    create_customer,
    create_product,
    create_staff,
    create_store,
    days_ago,
    record_purchase,
    unique,
)

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    if field is not None:
        assert field in [e["field"] for e in body["errors"]], body


async def _purchase_count(api: httpx.AsyncClient, customer_id: str) -> int:
    response = await api.get(f"/customers/{customer_id}/purchases")
    assert response.status_code == 200
    return len(response.json()["items"])


async def test_customer_in_unknown_store_is_422(api: httpx.AsyncClient) -> None:
    response = await api.post("/customers", json={"store_id": "no-such-store", "name": "赵六"})
    assert_problem(response, 422, "store_id")


async def test_unknown_references_are_422_naming_the_field(api: httpx.AsyncClient) -> None:
    """Every reference a client names is checked before the insert: never a foreign-key 500."""
    store = await create_store(api)
    other_store = await create_store(api)
    product = await create_product(api)
    customer = await create_customer(api, store_id=store["id"])
    other_staff = await create_staff(api, store_id=other_store["id"])
    url = f"/customers/{customer['id']}/purchases"
    item = {"sku": product["sku"], "qty": 1}
    for staff_id in ("", " ", "nobody", other_staff["id"]):
        body = {"purchased_at": days_ago(1), "items": [item], "staff_id": staff_id}
        assert_problem(await api.post(url, json=body), 422, "staff_id")
    for sku in ("NOPE", " "):
        body = {"purchased_at": days_ago(1), "items": [{"sku": sku, "qty": 1}]}
        assert_problem(await api.post(url, json=body), 422, "items.0.sku")
    for store_id in ("", " ", "no-such-store"):
        customer_in = {"store_id": store_id, "name": "赵六"}
        assert_problem(await api.post("/customers", json=customer_in), 422, "store_id")
        staff_in = {"store_id": store_id, "name": "李娜", "role": "staff"}
        assert_problem(await api.post("/staff", json=staff_in), 422, "store_id")
    assert await _purchase_count(api, customer["id"]) == 0


async def test_invalid_purchases_are_refused_and_nothing_is_written(api: httpx.AsyncClient) -> None:
    store = await create_store(api)
    product = await create_product(api)
    customer = await create_customer(api, store_id=store["id"])
    url = f"/customers/{customer['id']}/purchases"
    good_item = {"sku": product["sku"], "qty": 1}
    cases = [
        ({"purchased_at": days_ago(1), "items": [{"sku": "NOPE", "qty": 1}]}, "items.0.sku"),
        (
            {"purchased_at": days_ago(1), "items": [{"sku": product["sku"], "qty": 0}]},
            "items.0.qty",
        ),
        (
            {"purchased_at": days_ago(1), "items": [{"sku": product["sku"], "qty": -2}]},
            "items.0.qty",
        ),
        ({"purchased_at": "2026-13-45", "items": [good_item]}, "purchased_at"),
        ({"purchased_at": days_ago(-3), "items": [good_item]}, "purchased_at"),
        ({"purchased_at": days_ago(1), "items": []}, "items"),
        ({"purchased_at": days_ago(1), "items": [good_item], "staff_id": "nobody"}, "staff_id"),
        (
            {"purchased_at": days_ago(1), "items": [{**good_item, "unit_price": "-1.00"}]},
            "items.0.unit_price",
        ),
    ]
    for body, field in cases:
        assert_problem(await api.post(url, json=body), 422, field)
    # A good line beside a bad one: the whole purchase is refused.
    mixed = {"purchased_at": days_ago(1), "items": [good_item, {"sku": "NOPE", "qty": 1}]}
    assert_problem(await api.post(url, json=mixed), 422, "items.1.sku")
    assert await _purchase_count(api, customer["id"]) == 0


async def test_malformed_json_is_400(api: httpx.AsyncClient) -> None:
    store = await create_store(api)
    customer = await create_customer(api, store_id=store["id"])
    response = await api.post(
        f"/customers/{customer['id']}/purchases",
        content=b'{"purchased_at": ',
        headers={"content-type": "application/json"},
    )
    assert_problem(response, 400)


async def test_unknown_customer_is_404(api: httpx.AsyncClient) -> None:
    product = await create_product(api)
    response = await api.post(
        "/customers/no-such-customer/purchases",
        json={"purchased_at": days_ago(1), "items": [{"sku": product["sku"], "qty": 1}]},
    )
    assert_problem(response, 404)
    assert_problem(await api.get("/customers/no-such-customer"), 404)


async def test_other_invalid_records(api: httpx.AsyncClient) -> None:
    store = await create_store(api)
    assert_problem(await api.post("/stores", json={"code": store["code"], "name": "x"}), 409)
    assert_problem(
        await api.post("/stores", json={"code": "X1", "name": "x", "timezone": "Mars/Base"}),
        422,
        "timezone",
    )
    bad_product = {
        "sku": "P-1",
        "name": "x",
        "category": "c",
        "unit_price": "1.00",
        "days_per_unit": 0,
    }
    assert_problem(await api.post("/products", json=bad_product), 422, "days_per_unit")
    bad_phone = {"store_id": store["id"], "name": "x", "phone": "12"}
    assert_problem(await api.post("/customers", json=bad_phone), 422, "phone")
    assert_problem(await api.get("/customers", params={"limit": 501}), 422, "limit")
    assert_problem(await api.get("/customers", params={"cursor": "%%%"}), 400)


async def test_idempotency_key_replays_and_conflicts(api: httpx.AsyncClient) -> None:
    store = await create_store(api)
    product = await create_product(api)
    customer = await create_customer(api, store_id=store["id"])
    url = f"/customers/{customer['id']}/purchases"
    body = {"purchased_at": days_ago(1), "items": [{"sku": product["sku"], "qty": 2}]}
    headers = {"Idempotency-Key": "till-7-receipt-0042"}
    first = await api.post(url, json=body, headers=headers)
    again = await api.post(url, json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    other = await api.post(
        url, json={**body, "items": [{"sku": product["sku"], "qty": 3}]}, headers=headers
    )
    assert_problem(other, 409)
    assert await _purchase_count(api, customer["id"]) == 1


async def test_pagination_walks_every_item_once(api: httpx.AsyncClient) -> None:
    store = await create_store(api)
    product = await create_product(api)
    customer = await create_customer(api, store_id=store["id"])
    made = {
        (await record_purchase(api, customer_id=customer["id"], sku=product["sku"]))["id"]
        for _ in range(5)
    }
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.get(f"/customers/{customer['id']}/purchases", params=params)).json()
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(made)


async def _walk(api: httpx.AsyncClient, path: str, **filters: str) -> list[str]:
    """Every id of a list, a page of two at a time."""
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **filters, **({"cursor": cursor} if cursor else {})}
        response = await api.get(path, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        seen.extend(str(item["id"]) for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


async def test_every_list_pages_through_each_item_once(api: httpx.AsyncClient) -> None:
    store = await create_store(api)
    made = {(await create_customer(api, store_id=store["id"]))["id"] for _ in range(5)}
    staff = {(await create_staff(api, store_id=store["id"]))["id"] for _ in range(3)}
    customers = await _walk(api, "/customers", store_id=store["id"])
    assert sorted(customers) == sorted(made)
    assert sorted(await _walk(api, "/staff", store_id=store["id"])) == sorted(staff)
    # The audit trail's ids are numbers: its cursor carries one. Reading a phone is audited.
    customer_id = (await create_customer(api, store_id=store["id"], phone="13812345678"))["id"]
    for _ in range(4):
        assert (await api.get(f"/customers/{customer_id}")).status_code == 200
    audit = await _walk(api, "/audit", customer_id=customer_id)
    assert len(audit) == len(set(audit)) >= 5
    made_elsewhere = {
        "/stores": [store["id"], *[(await create_store(api))["id"] for _ in range(2)]],
        "/products": [(await create_product(api))["id"] for _ in range(3)],
        "/accounts": [
            (await create_account(api, role="staff", store_id=store["id"]))["id"] for _ in range(3)
        ],
        "/api-keys": [
            (await api.post("/api-keys", json={"store_id": store["id"], "name": f"k{n}"})).json()[
                "id"
            ]
            for n in range(3)
        ],
    }
    for path, ids in made_elsewhere.items():
        walked = await _walk(api, path)
        assert len(walked) == len(set(walked)) and set(ids) <= set(walked), path


async def test_an_account_names_only_staff_of_its_own_store(api: httpx.AsyncClient) -> None:
    """The roster lives in the customer service: the gateway checks an account's staff_id there
    before the account is written."""
    store = await create_store(api)
    other_store = await create_store(api)
    staff = await create_staff(api, store_id=store["id"])
    other_staff = await create_staff(api, store_id=other_store["id"])
    body = {"password": "correct horse battery", "role": "staff", "store_id": store["id"]}
    for staff_id in ("", "nobody", other_staff["id"]):
        refused = await api.post(
            "/accounts", json={**body, "username": unique("s"), "staff_id": staff_id}
        )
        assert_problem(refused, 422, "staff_id")
    created = await api.post(
        "/accounts", json={**body, "username": unique("s"), "staff_id": staff["id"]}
    )
    assert created.status_code == 201, created.text
    account_id = created.json()["id"]
    moved = await api.patch(f"/accounts/{account_id}", json={"staff_id": other_staff["id"]})
    assert_problem(moved, 422, "staff_id")
    listed = (await api.get("/accounts", params={"limit": 200})).json()["items"]
    assert next(a for a in listed if a["id"] == account_id)["staff_id"] == staff["id"]
