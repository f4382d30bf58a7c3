"""An old till's purchase history earns points as the counter does (DOMAIN.md §8), through the
gateway on the real stack: each imported purchase as of its own day, history older than the
points' expiry earned and expired at once, the balance, the ledger's rows (reasons, balance
after), the points that will expire next and the level right when the import is done, the level
announced once; and a refund of an imported purchase reversing its points in proportion, but
for those that had expired."""

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from crm_devstack.stack import LocalStack
from customer_service.membership.earning import add_months
from tests.builders import create_customer, create_product, days_ago
from tests.test_imports import csv_bytes, imported, mobile
from tests.test_membership import _buy, _card, _ledger, _level_events, _member

ZONE = "Asia/Shanghai"
RULES = {
    "points_per_yuan": "2",
    "points_expire_months": 12,
    "levels": [
        {"code": "basic", "name": "普通会员", "min_spend_12m": "0", "discount_percent": "0"},
        {"code": "silver", "name": "银卡会员", "min_spend_12m": "1000.00", "discount_percent": "5"},
    ],
}


def local_day(days_back: int) -> date:
    return datetime.now(ZoneInfo(ZONE)).date() - timedelta(days=days_back)


async def _imported_history(
    api: httpx.AsyncClient,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, date]]:
    """A member with one counter sale (20 points), then a till's history of three purchases:
    400 days ago (600 points, expired after 12 months), 100 and 30 days ago (1600 and 500)."""
    store, _ = await _member(api, RULES)
    assert store["timezone"] == ZONE
    product = await create_product(api)
    phone = mobile()
    customer = await create_customer(api, store_id=store["id"], phone=phone)
    await _buy(api, customer["id"], product["sku"], 1, "10.00", purchased_at=days_ago(1))
    days = {"old": local_day(400), "spring": local_day(100), "recent": local_day(30)}
    sheet = csv_bytes(
        [
            ["电话", "日期", "商品编码", "数量", "金额"],
            [phone, days["recent"].isoformat(), product["sku"], 1, "250.00"],
            [phone, days["old"].isoformat(), product["sku"], 1, "300.00"],
            [phone, days["spring"].isoformat(), product["sku"], 2, "800.00"],
        ]
    )
    job = await imported(api, sheet, store_id=store["id"], kind="purchases", name="till.csv")
    assert job["created"] == 3, job
    return customer, product, days


async def test_imported_history_earns_points_as_of_each_day_and_the_expired_ones_expire_at_once(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    customer, _, days = await _imported_history(api)

    card = await _card(api, customer["id"])
    assert card["points_balance"] == 20 + 1600 + 500  # the 600 of 400 days ago expired
    assert (card["level"], card["spend_12m"]) == ("silver", "1060.00")
    expiring = [(e["points"], e["on"]) for e in card["points_expiring"]]
    assert expiring[:2] == [
        (1600, add_months(days["spring"], 12).isoformat()),
        (500, add_months(days["recent"], 12).isoformat()),
    ]
    assert [p for p, _ in expiring] == [1600, 500, 20]

    rows = [
        (e["kind"], e["points"], e["balance_after"], e["reason"])
        for e in await _ledger(api, customer["id"])
    ]
    old, spring, recent = (f"imported purchase of {days[k].isoformat()}" for k in days)
    expired_on = add_months(days["old"], 12).isoformat()
    assert rows == [
        ("earn", 20, 20, None),
        ("earn", 600, 620, old),
        ("expire", -600, 20, f"expired on {expired_on}: {old}"),
        ("earn", 1600, 1620, spring),
        ("earn", 500, 2120, recent),
    ]
    events = await _level_events(stack, customer["id"])
    assert [
        (e["payload"]["from_level"], e["payload"]["to_level"], e["payload"]["cause"])
        for e in events
    ] == [("basic", "silver", "import")]


async def test_a_refund_of_an_imported_purchase_reverses_its_points_in_proportion(
    api: httpx.AsyncClient,
) -> None:
    customer, product, days = await _imported_history(api)
    purchases = (await api.get(f"/customers/{customer['id']}/purchases")).json()["items"]
    [spring] = [p for p in purchases if p["total"] == "800.00"]

    response = await api.post(
        f"/purchases/{spring['id']}/refund",
        json={"reason": "other", "items": [{"sku": product["sku"], "qty": 1}]},
    )
    assert response.status_code == 201, response.text

    last = (await _ledger(api, customer["id"]))[-1]
    assert (last["kind"], last["points"], last["reference"], last["balance_after"]) == (
        "reverse",
        -800,
        spring["id"],
        2120 - 800,
    )
    card = await _card(api, customer["id"])
    assert card["points_balance"] == 1320 and card["level"] == "basic"  # 660 spent in 12 months
    # Taken from the lot expiring first: the spring purchase's own.
    assert card["points_expiring"][0] == {
        "points": 800,
        "on": add_months(days["spring"], 12).isoformat(),
    }


async def test_a_refund_of_imported_history_whose_points_expired_takes_nothing_back(
    api: httpx.AsyncClient,
) -> None:
    customer, _, days = await _imported_history(api)
    purchases = (await api.get(f"/customers/{customer['id']}/purchases")).json()["items"]
    [old] = [p for p in purchases if p["total"] == "300.00"]  # its 600 points expired at once

    response = await api.post(f"/purchases/{old['id']}/refund", json={"reason": "other"})
    assert response.status_code == 201, response.text

    assert [e for e in await _ledger(api, customer["id"]) if e["kind"] == "reverse"] == []
    assert (await _card(api, customer["id"]))["points_balance"] == 20 + 1600 + 500
