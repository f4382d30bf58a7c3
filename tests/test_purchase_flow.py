"""A purchase through the gateway reaches scoring and engagement (real broker, real HTTP)."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx

from crm_devstack.fixtures import eventually
from tests.builders import (
    create_customer,
    create_product,
    create_staff,
    create_store,
    record_purchase,
    score_of,
    score_with_purchases,
)


async def test_purchase_reaches_score_and_follow_up_tasks(api: httpx.AsyncClient) -> None:
    store = await create_store(api, timezone="Asia/Shanghai")
    product = await create_product(api, unit_price="128.00", days_per_unit=30)
    staff = await create_staff(api, store_id=store["id"])
    customer = await create_customer(api, store_id=store["id"], phone="13812345678")
    # 16:30 UTC is 00:30 the next day in Shanghai: dates follow the store's time zone.
    utc_day = date.today() - timedelta(days=5)
    purchased_at = f"{utc_day.isoformat()}T16:30:00+00:00"
    purchase = await record_purchase(
        api,
        customer_id=customer["id"],
        sku=product["sku"],
        qty=2,
        purchased_at=purchased_at,
        staff_id=staff["id"],
    )
    assert purchase["total"] == "256.00"
    local_day = datetime.fromisoformat(purchased_at).astimezone(ZoneInfo("Asia/Shanghai")).date()
    assert local_day == utc_day + timedelta(days=1)

    score = await score_with_purchases(api, customer["id"])
    # API.md's score, every field of it.
    assert set(score) == {
        "customer_id",
        "store_id",
        "value_tier",
        "ladder_level",
        "ladder_score",
        "loyalty",
        "lifecycle",
        "rfm",
        "stats",
        "supply_runs_out_on",
        "predictions",
        "computed_at",
        "version",
    }
    assert (score["ladder_level"], score["ladder_score"]) == ("0", 0)  # has bought, once
    assert score["loyalty"] == "floating"
    this_year = datetime.now(ZoneInfo("Asia/Shanghai")).year
    # A first purchase this (store-local) year; one made in the last days of the year before
    # is still in service but not bought this year.
    expected = "new_this_year" if local_day.year == this_year else "in_service_not_bought"
    assert score["lifecycle"] == expected
    assert score["value_tier"] == "vip"  # the only spender of the store is its top customer
    assert score["stats"]["purchase_count"] == 1
    assert score["stats"]["net_spend_365d"] == "256.00"
    assert score["supply_runs_out_on"] == (local_day + timedelta(days=60)).isoformat()

    async def tasks() -> list[dict] | None:
        response = await api.get("/tasks", params={"customer_id": customer["id"]})
        items = response.json()["items"]
        kinds = sorted(t["kind"] for t in items)
        return items if kinds == ["follow_up"] * 5 + ["refill"] else None

    found = await eventually(tasks)
    # The refill reminder: three days before the supply scoring announced runs out.
    [refill] = [t for t in found if t["kind"] == "refill"]
    assert refill["due_on"] == (local_day + timedelta(days=60 - 3)).isoformat()
    items = sorted((t for t in found if t["kind"] == "follow_up"), key=lambda t: t["phase"])
    assert [t["phase"] for t in items] == [1, 2, 3, 4, 5]
    assert [t["due_on"] for t in items] == [
        (local_day + timedelta(days=d)).isoformat() for d in (3, 7, 14, 21, 28)
    ]
    assert all(t["assignee_staff_id"] == staff["id"] for t in items)
    assert all(t["method"] and t["purpose"] for t in items)


async def test_second_purchase_extends_supply_and_starts_no_second_plan(
    api: httpx.AsyncClient,
) -> None:
    store = await create_store(api)
    product = await create_product(api, days_per_unit=30)
    customer = await create_customer(api, store_id=store["id"])
    first_on = date.today() - timedelta(days=24)
    await record_purchase(
        api,
        customer_id=customer["id"],
        sku=product["sku"],
        qty=1,
        purchased_at=f"{first_on.isoformat()}T10:00:00+08:00",
    )
    await score_with_purchases(api, customer["id"])
    # Ten days later, twenty days of stock are still at home: they carry over.
    await record_purchase(
        api,
        customer_id=customer["id"],
        sku=product["sku"],
        qty=2,
        purchased_at=f"{(first_on + timedelta(days=10)).isoformat()}T10:00:00+08:00",
    )

    score = await score_with_purchases(api, customer["id"], 2)
    assert score["supply_runs_out_on"] == (first_on + timedelta(days=30 + 60)).isoformat()
    response = await api.get("/tasks", params={"customer_id": customer["id"]})
    kinds = [t["kind"] for t in response.json()["items"]]
    assert kinds.count("follow_up") == 5  # one plan: the product was bought before


async def test_a_file_without_purchases_is_a_prospect_until_it_buys(api: httpx.AsyncClient) -> None:
    store = await create_store(api)
    product = await create_product(api)
    customer = await create_customer(api, store_id=store["id"])
    prospect = await eventually(lambda: score_of(api, customer["id"]))
    assert prospect["value_tier"] == "prospect"
    assert prospect["stats"]["purchase_count"] == 0
    await record_purchase(api, customer_id=customer["id"], sku=product["sku"])

    async def bought() -> dict | None:
        score = await score_of(api, customer["id"])
        return score if score and score["value_tier"] != "prospect" else None

    assert (await eventually(bought))["value_tier"] == "vip"
