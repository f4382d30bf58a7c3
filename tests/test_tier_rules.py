"""A store's tier rules and refunds through the gateway, on the real stack: a refund recorded
with ``POST /purchases/{id}/refund`` lowers its customer's tier and lifts another, with
``score.changed`` and history; ``PUT /stores/{id}/tier-rules`` (top 10% vip) moves a store's
customers once it is recomputed, the GET shows the rules, invalid rules are 422s naming each
field, staff read but may not change them, and another store is untouched."""

from typing import Any

import httpx

from crm_devstack.fixtures import eventually
from tests.builders import (
    client_as,
    create_account,
    create_customer,
    create_product,
    create_store,
    days_ago,
    record_purchase,
    score_of,
    score_with_purchases,
    sign_in,
)

DEFAULTS = {
    "vip_share": "0.010000",
    "major_share": "0.050000",
    "medium_share": "0.200000",
    "window_days": 365,
    "lost_after_days": 730,
    "stopped_after_days": 30,
}


async def _store_of_spenders(api: httpx.AsyncClient, spends: list[int]) -> tuple[str, list[str]]:
    """A store whose customers bought ``spends`` × 10.00 each, every purchase scored."""
    store = await create_store(api)
    product = await create_product(api, unit_price="10.00", days_per_unit=30)
    customers = []
    for units in spends:
        customer = await create_customer(api, store_id=store["id"])
        await record_purchase(
            api, customer_id=customer["id"], sku=product["sku"], qty=units, purchased_at=days_ago(5)
        )
        customers.append(customer["id"])
    for customer_id in customers:
        await score_with_purchases(api, customer_id)
    return store["id"], customers


async def _tiers(api: httpx.AsyncClient, customers: list[str]) -> list[str | None]:
    return [(await score_of(api, c) or {}).get("value_tier") for c in customers]


async def _history(api: httpx.AsyncClient, customer_id: str) -> list[dict[str, Any]]:
    response = await api.get(f"/customers/{customer_id}/score/history")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_a_refund_drops_its_customer_and_lifts_another(api: httpx.AsyncClient) -> None:
    store = await create_store(api)
    product = await create_product(api, unit_price="100.00", days_per_unit=30)
    big = await create_customer(api, store_id=store["id"])
    rival = await create_customer(api, store_id=store["id"])
    purchase = await record_purchase(
        api, customer_id=big["id"], sku=product["sku"], qty=3, purchased_at=days_ago(4)
    )
    await record_purchase(
        api, customer_id=rival["id"], sku=product["sku"], qty=2, purchased_at=days_ago(3)
    )
    before = await score_with_purchases(api, big["id"])
    await score_with_purchases(api, rival["id"])
    assert await _tiers(api, [big["id"], rival["id"]]) == ["vip", "small"]

    refund = await api.post(
        f"/purchases/{purchase['id']}/refund",
        json={"reason": "no_effect", "items": [{"sku": product["sku"], "qty": 2}]},
    )
    assert refund.status_code == 201, refund.text

    async def refunded() -> dict[str, Any] | None:
        score = await score_of(api, big["id"])
        return score if score and score["stats"]["net_spend_365d"] == "100.00" else None

    after = await eventually(refunded, timeout=60)
    assert after["stats"]["purchase_count"] == 1
    # 60 days of supply taken back of 90.
    assert before["supply_runs_out_on"] != after["supply_runs_out_on"]
    assert await _tiers(api, [big["id"], rival["id"]]) == ["small", "vip"]
    dropped = [h for h in await _history(api, big["id"]) if h["field"] == "value_tier"][0]
    lifted = [h for h in await _history(api, rival["id"]) if h["field"] == "value_tier"][0]
    assert (dropped["previous"], dropped["value"], dropped["cause"]) == ("vip", "small", "refund")
    assert (lifted["previous"], lifted["value"], lifted["cause"]) == ("small", "vip", "refund")


async def test_tier_rules_per_store(api: httpx.AsyncClient) -> None:
    # Ten spenders: by default the top one is vip (p = 0 < 0.01), the second medium (0.1).
    store, customers = await _store_of_spenders(api, [100 - i for i in range(10)])
    other, others = await _store_of_spenders(api, [50 - i for i in range(10)])
    assert (await _tiers(api, customers))[:3] == ["vip", "medium", "small"]
    untouched = await _tiers(api, others)

    shown = await api.get(f"/stores/{store}/tier-rules")
    assert shown.status_code == 200, shown.text
    assert shown.json() == {"store_id": store, **DEFAULTS}

    # Top 10% vip, 30% major, 60% medium.
    rules = {"vip_share": "0.1", "major_share": "0.3", "medium_share": "0.6", "window_days": 200}
    changed = await api.put(f"/stores/{store}/tier-rules", json=rules)
    assert changed.status_code == 200, changed.text
    expected = {
        **DEFAULTS,
        "vip_share": "0.100000",
        "major_share": "0.300000",
        "medium_share": "0.600000",
        "window_days": 200,
    }
    assert changed.json() == {"store_id": store, **expected}
    assert (await api.get(f"/stores/{store}/tier-rules")).json() == {"store_id": store, **expected}

    want = ["vip"] + ["major"] * 2 + ["medium"] * 3 + ["small"] * 4

    async def moved() -> bool:
        return await _tiers(api, customers) == want

    await eventually(moved, timeout=60)
    latest = [h for h in await _history(api, customers[1]) if h["field"] == "value_tier"][0]
    assert (latest["previous"], latest["value"], latest["cause"]) == (
        "medium",
        "major",
        "recompute",
    )
    assert await _tiers(api, others) == untouched
    assert (await api.get(f"/stores/{other}/tier-rules")).json() == {"store_id": other, **DEFAULTS}

    # A purchase after the change is ranked with the store's rules too: a new top spender.
    product = await create_product(api, unit_price="10.00", days_per_unit=30)
    newcomer = await create_customer(api, store_id=store)
    await record_purchase(api, customer_id=newcomer["id"], sku=product["sku"], qty=500)
    assert (await score_with_purchases(api, newcomer["id"]))["value_tier"] == "vip"

    # Invalid: not rising, out of (0, 1), a window not a positive integer, an unknown field.
    bad = await api.put(
        f"/stores/{store}/tier-rules",
        json={
            "vip_share": "0.5",
            "major_share": "0.4",
            "medium_share": "1.2",
            "window_days": -1,
            "lost_after_days": 1.5,
            "colour": "red",
        },
    )
    assert bad.status_code == 422, bad.text
    assert bad.headers["content-type"] == "application/problem+json"
    named = {e["field"] for e in bad.json()["errors"]}
    assert {"medium_share", "window_days", "lost_after_days", "colour"} <= named
    not_rising = await api.put(
        f"/stores/{store}/tier-rules", json={"vip_share": "0.3", "major_share": "0.2"}
    )
    assert not_rising.status_code == 422, not_rising.text
    # Each share not above the one before it is named (medium's default 0.2 is not above 0.2).
    assert {e["field"] for e in not_rising.json()["errors"]} == {"major_share", "medium_share"}
    assert (await api.get(f"/stores/{store}/tier-rules")).json()["vip_share"] == "0.100000"

    # The store's staff read the rules but may not change them; its manager may; another
    # store's manager sees no such store.
    staff = await sign_in(api, await create_account(api, role="staff", store_id=store))
    manager = await sign_in(api, await create_account(api, role="store_manager", store_id=store))
    stranger = await sign_in(api, await create_account(api, role="store_manager", store_id=other))
    async with client_as(api, token=staff["access_token"]) as as_staff:
        assert (await as_staff.get(f"/stores/{store}/tier-rules")).status_code == 200
        assert (await as_staff.put(f"/stores/{store}/tier-rules", json={})).status_code == 403
    async with client_as(api, token=stranger["access_token"]) as as_stranger:
        assert (await as_stranger.get(f"/stores/{store}/tier-rules")).status_code == 404
        put = await as_stranger.put(f"/stores/{store}/tier-rules", json={})
        assert put.status_code == 404
    async with client_as(api, token=manager["access_token"]) as as_manager:
        back = await as_manager.put(f"/stores/{store}/tier-rules", json={})
        assert back.status_code == 200, back.text
        assert back.json() == {"store_id": store, **DEFAULTS}

    # Back to the defaults among eleven: the newcomer alone is vip, the next two medium.
    async def restored() -> bool:
        return (await _tiers(api, customers))[:3] == ["medium", "medium", "small"]

    await eventually(restored, timeout=60)
