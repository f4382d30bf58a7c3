"""Segments through the gateway: a store's scores filtered by classification in cursor pages
(``GET /scores``), the store's distribution (``GET /stores/{id}/distribution``), the recompute
that classifies a store (``POST /scores/recompute``), and who may see and do what."""

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest

from crm_devstack.fixtures import eventually
from scoring_service.scores import segments
from tests.builders import (
    client_as,
    create_account,
    create_customer,
    create_product,
    create_store,
    days_ago,
    record_purchase,
    score_of,
    sign_in,
)

# Where each filter's value sits in a listed score.
FILTERS = {
    "value_tier": lambda s: s["value_tier"],
    "ladder": lambda s: s["ladder_level"],
    "lifecycle": lambda s: s["lifecycle"],
    "loyalty": lambda s: s["loyalty"],
    "rfm_segment": lambda s: s["rfm"]["segment"] if s["rfm"] else None,
}


async def _scored_store(api: httpx.AsyncClient) -> tuple[str, list[str]]:
    """A store of twelve buyers (spends and purchase counts apart, dates over two years) and
    two files without a purchase, every score in and the store recomputed (classified)."""
    store = (await create_store(api))["id"]
    product = await create_product(api, days_per_unit=30)
    plans = [
        [(100 * (i + 1), days_ago(3 + 40 * j + i)) for j in range(1 + i % 4)] for i in range(12)
    ]
    plans.append([(9000, days_ago(500))])  # bought long ago only: inactive

    async def buyer(plan: list[tuple[int, str]]) -> str:
        customer = (await create_customer(api, store_id=store))["id"]
        for spend, at in plan:
            await record_purchase(
                api,
                customer_id=customer,
                sku=product["sku"],
                unit_price=f"{spend}.00",
                purchased_at=at,
            )
        return customer

    customers = list(await asyncio.gather(*(buyer(p) for p in plans)))
    customers += [(await create_customer(api, store_id=store))["id"] for _ in range(2)]
    counts = [len(p) for p in plans] + [0, 0]

    async def all_scored() -> bool:
        scores = await asyncio.gather(*(score_of(api, c) for c in customers))
        return all(
            s is not None and s["stats"]["purchase_count"] == n
            for s, n in zip(scores, counts, strict=True)
        )

    await eventually(all_scored, timeout=60)
    done = await api.post("/scores/recompute", json={"store_id": store})
    assert done.status_code == 200, done.text
    assert done.json()["customers"] == len(customers)
    return store, customers


async def _all_pages(api: httpx.AsyncClient, params: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await api.get("/scores", params={**params, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        body = page.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


@pytest.fixture(scope="module")
async def scored(stack: Any, admin_token: str) -> tuple[str, list[str]]:
    async with httpx.AsyncClient(
        base_url=stack.url("gateway") + "/api/v1",
        headers={"Authorization": f"Bearer {admin_token}"},
        timeout=60,
    ) as api:
        return await _scored_store(api)


async def test_a_store_pages_in_customer_order_and_every_filter_and_pair_selects_its_scores(
    api: httpx.AsyncClient, scored: tuple[str, list[str]]
) -> None:
    store, customers = scored
    listed = await _all_pages(api, {"store_id": store, "limit": 4})
    ids = [s["customer_id"] for s in listed]
    assert sorted(ids) == ids and set(ids) == set(customers) and len(ids) == len(customers)
    by_id = {s["customer_id"]: s for s in listed}
    for s in listed:  # each listed score is the customer's score
        one = await score_of(api, s["customer_id"])
        assert one is not None and one["value_tier"] == s["value_tier"]
        assert one["stats"] == s["stats"] and one["version"] == s["version"]
    tiers = Counter(s["value_tier"] for s in listed)
    assert tiers["vip"] == 1 and tiers["prospect"] == 2 and tiers["inactive"] == 1
    assert all(
        s["lifecycle"] and s["ladder_level"] and s["rfm"]
        for s in listed
        if s["stats"]["purchase_count"]
    )
    # Whatever the classifications wrote is a value the listing's filters accept.
    accepted = {d.parameter: d.values for d in segments.DIMENSIONS}
    for name, value_of in FILTERS.items():
        assert {value_of(s) for s in listed} - {None} <= set(accepted[name]), name

    # Every value each filter takes in this store, alone and with every other filter's values.
    for name, value_of in FILTERS.items():
        for value in {value_of(s) for s in listed} - {None}:
            got = await _all_pages(api, {"store_id": store, name: value, "limit": 3})
            assert [s["customer_id"] for s in got] == [
                i for i in ids if value_of(by_id[i]) == value
            ]
            for other, other_of in FILTERS.items():
                if other == name:
                    continue
                for second in {other_of(s) for s in got} - {None}:
                    pair = await api.get(
                        "/scores", params={"store_id": store, name: value, other: second}
                    )
                    assert [s["customer_id"] for s in pair.json()["items"]] == [
                        i
                        for i in ids
                        if value_of(by_id[i]) == value and other_of(by_id[i]) == second
                    ]


async def test_a_cursor_neither_repeats_nor_skips_while_customers_are_added(
    api: httpx.AsyncClient, scored: tuple[str, list[str]]
) -> None:
    store, customers = scored
    first = (await api.get("/scores", params={"store_id": store, "limit": 5})).json()
    added = [(await create_customer(api, store_id=store))["id"] for _ in range(3)]

    async def registered() -> bool:
        return all(await asyncio.gather(*(score_of(api, c) for c in added)))

    await eventually(registered)
    rest = await _all_pages(api, {"store_id": store, "limit": 5, "cursor": first["next_cursor"]})
    seen = [s["customer_id"] for s in first["items"] + rest]
    assert len(seen) == len(set(seen)) and set(customers) <= set(seen) <= set(customers + added)


async def test_the_distribution_counts_every_classification_of_the_store(
    api: httpx.AsyncClient, scored: tuple[str, list[str]]
) -> None:
    store, _ = scored
    listed = await _all_pages(api, {"store_id": store, "limit": 500})
    response = await api.get(f"/stores/{store}/distribution")
    assert response.status_code == 200, response.text
    counted = response.json()
    assert counted["customers"] == len(listed)
    for name, value_of in FILTERS.items():
        expected = Counter(value_of(s) or "none" for s in listed)
        shown = counted[name]
        assert {k: v for k, v in shown.items() if v} == dict(expected), name
        assert sum(shown.values()) == len(listed)
    # Every value is listed, those no customer has with 0.
    assert {"vip", "major", "medium", "small", "inactive", "prospect"} <= set(counted["value_tier"])
    assert set("0EDCBA") <= set(counted["ladder"])


async def test_bad_filters_and_cursors_are_refused_by_name(
    api: httpx.AsyncClient, scored: tuple[str, list[str]]
) -> None:
    store, _ = scored
    response = await api.get(
        "/scores", params={"store_id": store, "value_tier": "gold", "lifecycle": "zombie"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    errors = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert set(errors) == {"value_tier", "lifecycle"}
    assert "vip" in errors["value_tier"] and "active_second_line" in errors["lifecycle"]
    ladder = await api.get("/scores", params={"store_id": store, "ladder": "Z"})
    assert ladder.status_code == 422 and ladder.json()["errors"][0]["field"] == "ladder"
    # Head office names the store: a listing across every store has no order to page by.
    unnamed = await api.get("/scores")
    assert unnamed.status_code == 422 and unnamed.json()["errors"][0]["field"] == "store_id"
    assert (
        await api.get("/scores", params={"store_id": store, "cursor": "nonsense"})
    ).status_code == 400
    assert (await api.get("/scores", params={"store_id": store, "limit": 501})).status_code == 422
    # A store scoring holds nothing of.
    assert (await api.get("/scores", params={"store_id": "no-such-store"})).json()["items"] == []
    assert (await api.get("/stores/no-such-store/distribution")).status_code == 404
    gone = await api.post("/scores/recompute", json={"store_id": "no-such-store"})
    assert gone.status_code == 404
    assert (await api.post("/scores/recompute", json={})).status_code == 422


async def test_a_store_sees_only_its_own_segments_and_only_head_office_recomputes(
    api: httpx.AsyncClient, scored: tuple[str, list[str]]
) -> None:
    other_store, _ = scored
    store = (await create_store(api))["id"]
    product = await create_product(api)
    customer = (await create_customer(api, store_id=store))["id"]
    await record_purchase(api, customer_id=customer, sku=product["sku"])

    async def scored_once() -> bool:
        score = await score_of(api, customer)
        return bool(score and score["stats"]["purchase_count"] == 1)

    await eventually(scored_once)
    for role in ("store_manager", "staff"):
        account = await create_account(api, role=role, store_id=store)
        async with client_as(api, token=(await sign_in(api, account))["access_token"]) as caller:
            own = (await caller.get("/scores")).json()  # their store, unnamed
            assert [s["customer_id"] for s in own["items"]] == [customer]
            named = await caller.get("/scores", params={"store_id": store, "value_tier": "vip"})
            assert [s["customer_id"] for s in named.json()["items"]] == [customer]
            assert (await caller.get(f"/stores/{store}/distribution")).json()["customers"] == 1
            # Another store's segments and distribution are as unknown as a store that is not.
            assert (
                await caller.get("/scores", params={"store_id": other_store})
            ).status_code == 404
            assert (await caller.get(f"/stores/{other_store}/distribution")).status_code == 404
            refused = await caller.post("/scores/recompute", json={"store_id": store})
            assert refused.status_code == 403
