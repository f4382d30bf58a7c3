"""Membership (DOMAIN.md §8) through the gateway: a store's rules and their checks, points
earned in the sale, reversed in proportion by refunds (a spent balance recorded as a
shortfall), redeemed once per key and never beyond the balance, even by parallel requests;
expired first in first out by the daily job at the store's local midnight; the level moved by
consumption announced once on the real broker; and a merge moving the points."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from crm_devstack.fixtures import eventually
from crm_devstack.stack import LocalStack
from crm_libs.db import asyncpg_dsn, make_engine, make_sessionmaker
from crm_libs.events.envelope import Topics
from customer_service.membership import expiry
from tests.builders import create_customer, create_product, create_store, days_ago

RULES = {
    "points_per_yuan": "2",
    "points_expire_months": 1,
    "levels": [
        {"code": "basic", "name": "普通会员", "min_spend_12m": "0", "discount_percent": "0"},
        {
            "code": "silver",
            "name": "银卡会员",
            "min_spend_12m": "1000.00",
            "discount_percent": "5",
            "benefits": ["生日礼"],
        },
    ],
}


async def _member(
    api: httpx.AsyncClient, rules: dict[str, Any] | None = RULES
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A store (with ``rules``) and a customer of it."""
    store = await create_store(api)
    if rules is not None:
        response = await api.put(f"/stores/{store['id']}/membership-rules", json=rules)
        assert response.status_code == 200, response.text
    return store, await create_customer(api, store_id=store["id"])


async def _buy(
    api: httpx.AsyncClient, customer_id: str, sku: str, qty: int, price: str, **extra: Any
) -> dict[str, Any]:
    body = {"items": [{"sku": sku, "qty": qty, "unit_price": price}], **extra}
    body.setdefault("purchased_at", days_ago(1))
    response = await api.post(f"/customers/{customer_id}/purchases", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def _card(api: httpx.AsyncClient, customer_id: str) -> dict[str, Any]:
    response = await api.get(f"/customers/{customer_id}/membership")
    assert response.status_code == 200, response.text
    return response.json()


async def _ledger(api: httpx.AsyncClient, customer_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.get(f"/customers/{customer_id}/points", params=params)).json()
        items += page["items"]
        if not (cursor := page["next_cursor"]):
            return items


def _redeem(api: httpx.AsyncClient, customer_id: str, points: int, **kw: Any) -> Any:
    return api.post(
        f"/customers/{customer_id}/points/redemptions",
        json={"points": points, "gift": "血压计"},
        **kw,
    )


async def test_a_store_runs_on_defaults_and_rules_are_checked_field_by_field(
    api: httpx.AsyncClient,
) -> None:
    store, _ = await _member(api, rules=None)
    path = f"/stores/{store['id']}/membership-rules"
    defaults = (await api.get(path)).json()
    assert defaults["configured"] is False and defaults["points_per_yuan"] == "1"
    assert defaults["points_expire_months"] == 24 and len(defaults["levels"]) >= 2

    levels = [dict(level) for level in RULES["levels"]]  # type: ignore[union-attr]
    out_of_order = {**RULES, "levels": [levels[1], levels[0]]}
    response = await api.put(path, json=out_of_order)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["levels.1.min_spend_12m"]
    twice = {**RULES, "levels": [levels[0], {**levels[1], "code": "basic"}]}
    response = await api.put(path, json=twice)
    assert [e["field"] for e in response.json()["errors"]] == ["levels.1.code"]
    too_much = {**RULES, "levels": [{**levels[0], "discount_percent": "120"}]}
    response = await api.put(path, json=too_much)
    assert response.status_code == 422
    assert "levels.0.discount_percent" in response.text
    assert (await api.get(path)).json()["configured"] is False  # nothing written

    assert (await api.put(path, json=RULES)).status_code == 200
    saved = (await api.get(path)).json()
    assert saved["configured"] is True and saved["points_per_yuan"] == "2.0000"
    assert [lvl["code"] for lvl in saved["levels"]] == ["basic", "silver"]


async def test_a_sale_earns_the_floor_of_its_total_times_the_rate(api: httpx.AsyncClient) -> None:
    _, customer = await _member(api)
    product = await create_product(api, unit_price="100.00")
    await _buy(api, customer["id"], product["sku"], 3, "33.33")  # 99.99 × 2 = 199.98 → 199
    await _buy(api, customer["id"], product["sku"], 1, "0.00")  # a gift: nothing earned
    card = await _card(api, customer["id"])
    assert card["points_balance"] == 199 and card["spend_12m"] == "99.99"
    assert card["level"] == "basic"
    ledger = await _ledger(api, customer["id"])
    assert [(e["kind"], e["points"], e["balance_after"]) for e in ledger] == [("earn", 199, 199)]


async def test_refunds_reverse_in_proportion_and_a_spent_balance_is_a_shortfall(
    api: httpx.AsyncClient,
) -> None:
    _, customer = await _member(api, rules={**RULES, "points_per_yuan": "1"})
    a = await create_product(api, unit_price="90.00")
    b = await create_product(api, unit_price="50.00")
    response = await api.post(
        f"/customers/{customer['id']}/purchases",
        json={
            "purchased_at": days_ago(2),
            "items": [{"sku": a["sku"], "qty": 3}, {"sku": b["sku"], "qty": 1}],
        },
    )
    purchase = response.json()  # 320.00: 320 points
    refund = await api.post(
        f"/purchases/{purchase['id']}/refund",
        json={"reason": "no_effect", "items": [{"sku": b["sku"], "qty": 1}]},
    )
    assert refund.status_code == 201, refund.text
    assert (await _card(api, customer["id"]))["points_balance"] == 270  # 320 × 50/320 back
    assert (await _redeem(api, customer["id"], 250)).status_code == 201
    rest = await api.post(f"/purchases/{purchase['id']}/refund", json={"reason": "other"})
    assert rest.status_code == 201, rest.text
    card = await _card(api, customer["id"])
    assert card["points_balance"] == 0 and card["points_expiring"] == []
    assert [
        (e["kind"], e["points"], e["balance_after"], e["shortfall"])
        for e in await _ledger(api, customer["id"])
    ] == [
        ("earn", 320, 320, 0),
        ("reverse", -50, 270, 0),
        ("redeem", -250, 20, 0),
        ("reverse", -20, 0, 250),  # 270 wanted, 20 left
    ]


async def test_a_redemption_beyond_the_balance_is_409_and_a_key_redeems_once(
    api: httpx.AsyncClient,
) -> None:
    _, customer = await _member(api)
    product = await create_product(api)
    await _buy(api, customer["id"], product["sku"], 1, "50.00")  # 100 points
    over = await _redeem(api, customer["id"], 101)
    assert over.status_code == 409
    assert "balance is 100" in over.json()["detail"]
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = await _redeem(api, customer["id"], 40, headers=key)
    again = await _redeem(api, customer["id"], 40, headers=key)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() and first.json()["balance_after"] == 60
    assert (await _card(api, customer["id"]))["points_balance"] == 60


async def test_parallel_redemptions_never_overspend(api: httpx.AsyncClient) -> None:
    _, customer = await _member(api)
    product = await create_product(api)
    await _buy(api, customer["id"], product["sku"], 1, "50.00")  # 100 points
    answers = await asyncio.gather(*(_redeem(api, customer["id"], 15) for _ in range(12)))
    assert sorted(r.status_code for r in answers) == [201] * 6 + [409] * 6
    assert (await _card(api, customer["id"]))["points_balance"] == 10
    redeemed = [e for e in await _ledger(api, customer["id"]) if e["kind"] == "redeem"]
    assert sorted(e["balance_after"] for e in redeemed) == [10, 25, 40, 55, 70, 85]


@pytest.fixture
async def customer_db(stack: LocalStack) -> AsyncIterator[Any]:
    engine = make_engine(stack.database_url("customer"), pool_size=2)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


def _local_midnight(day: date, zone: str) -> datetime:
    return datetime.combine(day, time(0), ZoneInfo(zone)).astimezone(UTC)


async def _two_sales_and_a_redemption(
    api: httpx.AsyncClient,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A member (points last a month, in Asia/Shanghai) who earned 100 points 20 days ago and 50
    five days ago, and redeemed 30 (from the older lot); the member and the older sale."""
    _, customer = await _member(api)
    product = await create_product(api)
    older = await _buy(api, customer["id"], product["sku"], 1, "50.00", purchased_at=days_ago(20))
    await _buy(api, customer["id"], product["sku"], 1, "25.00", purchased_at=days_ago(5))
    assert (await _redeem(api, customer["id"], 30)).status_code == 201
    return customer, older


async def test_points_expire_first_in_first_out_at_the_stores_midnight(
    api: httpx.AsyncClient, customer_db: Any
) -> None:
    customer, older = await _two_sales_and_a_redemption(api)
    expiring = (await _card(api, customer["id"]))["points_expiring"]
    assert [e["points"] for e in expiring] == [70, 50]
    first_day = date.fromisoformat(expiring[0]["on"])
    bought_on = datetime.fromisoformat(older["purchased_at"]).astimezone(ZoneInfo("Asia/Shanghai"))
    assert 28 <= (first_day - bought_on.date()).days <= 31  # a month after, in the store's zone

    midnight = _local_midnight(first_day, "Asia/Shanghai")  # 16:00 UTC the day before
    await expiry.run_due_stores(customer_db, now=midnight - timedelta(minutes=1))
    assert (await _card(api, customer["id"]))["points_balance"] == 120
    await expiry.run_due_stores(customer_db, now=midnight + timedelta(minutes=1))
    card = await _card(api, customer["id"])
    assert card["points_balance"] == 50 and [e["points"] for e in card["points_expiring"]] == [50]
    await expiry.run_due_stores(customer_db, now=midnight + timedelta(minutes=2))  # same day
    last = (await _ledger(api, customer["id"]))[-1]
    assert (last["kind"], last["points"], last["balance_after"]) == ("expire", -70, 50)
    assert len([e for e in await _ledger(api, customer["id"]) if e["kind"] == "expire"]) == 1


async def test_a_refund_leaves_alone_what_of_its_sale_s_points_expired(
    api: httpx.AsyncClient, customer_db: Any
) -> None:
    customer, older = await _two_sales_and_a_redemption(api)
    first_day = date.fromisoformat((await _card(api, customer["id"]))["points_expiring"][0]["on"])
    await expiry.run_due_stores(
        customer_db, now=_local_midnight(first_day, "Asia/Shanghai") + timedelta(minutes=1)
    )
    assert (await _card(api, customer["id"]))["points_balance"] == 50  # 70 of the 100 expired

    refund = await api.post(f"/purchases/{older['id']}/refund", json={"reason": "other"})
    assert refund.status_code == 201, refund.text
    # The sale earned 100: 70 expired already, so the 30 redeemed are what is taken back (from
    # the newer sale's points), not 100 again from them.
    last = (await _ledger(api, customer["id"]))[-1]
    assert (last["kind"], last["points"], last["balance_after"], last["shortfall"]) == (
        "reverse",
        -30,
        20,
        0,
    )
    assert (await _card(api, customer["id"]))["points_balance"] == 20


async def _level_events(stack: LocalStack, customer_id: str) -> list[dict[str, Any]]:
    """The customer's ``customer.level_changed`` events on the broker, once all are sent."""
    db = await asyncpg.connect(asyncpg_dsn(stack.database_url("customer")))
    try:

        async def relayed() -> bool:
            return not await db.fetchval(
                "SELECT count(*) FROM outbox_event WHERE key = $1 AND published_at IS NULL",
                customer_id,
            )

        await eventually(relayed)
    finally:
        await db.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.broker.bootstrap, enable_auto_commit=False)
    await consumer.start()
    found = []
    try:
        tps = [
            TopicPartition(Topics.CUSTOMERS, p)
            for p in consumer.partitions_for_topic(Topics.CUSTOMERS) or await _partitions(consumer)
        ]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        while [tp for tp in tps if await consumer.position(tp) < end[tp]]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    event = orjson.loads(record.value)
                    if event["customer_id"] == customer_id and event["type"].endswith(
                        "level_changed"
                    ):
                        found.append(event)
    finally:
        await consumer.stop()
    return found


async def _partitions(consumer: AIOKafkaConsumer) -> set[int]:
    await consumer.topics()
    return consumer.partitions_for_topic(Topics.CUSTOMERS) or set()


async def test_a_level_reached_by_consumption_is_announced_once(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    _, customer = await _member(api)
    product = await create_product(api)
    sale = await _buy(api, customer["id"], product["sku"], 9, "100.00")  # 900: still basic
    await _buy(api, customer["id"], product["sku"], 1, "100.00")  # 1000: silver
    await _buy(api, customer["id"], product["sku"], 1, "100.00")  # still silver
    assert (await _card(api, customer["id"]))["level"] == "silver"
    events = await _level_events(stack, customer["id"])
    assert [(e["payload"]["from_level"], e["payload"]["to_level"]) for e in events] == [
        ("basic", "silver")
    ]
    assert events[0]["payload"]["cause"] == "purchase"
    assert events[0]["payload"]["spend_12m"] == "1000.00"

    refund = await api.post(f"/purchases/{sale['id']}/refund", json={"reason": "other"})
    assert refund.status_code == 201
    assert (await _card(api, customer["id"]))["level"] == "basic"  # 200 left
    events = await _level_events(stack, customer["id"])
    assert [(e["payload"]["to_level"], e["payload"]["cause"]) for e in events] == [
        ("silver", "purchase"),
        ("basic", "refund"),
    ]


async def test_a_merge_moves_the_points_with_their_expiry_to_the_survivor(
    api: httpx.AsyncClient,
) -> None:
    store, survivor = await _member(api)
    duplicate = await create_customer(api, store_id=store["id"])
    product = await create_product(api)
    await _buy(api, survivor["id"], product["sku"], 1, "10.00", purchased_at=days_ago(3))
    await _buy(api, duplicate["id"], product["sku"], 1, "30.00", purchased_at=days_ago(10))
    await _buy(api, duplicate["id"], product["sku"], 1, "5.00", purchased_at=days_ago(2))
    expiring = (await _card(api, duplicate["id"]))["points_expiring"]
    response = await api.post(
        f"/customers/{survivor['id']}/merge", json={"duplicate_id": duplicate["id"]}
    )
    assert response.status_code == 200, response.text
    card = await _card(api, survivor["id"])
    assert card["points_balance"] == 20 + 60 + 10 and card["spend_12m"] == "45.00"
    moved_days = {e["on"] for e in expiring}
    assert moved_days <= {e["on"] for e in card["points_expiring"]}
    adjusts = [e for e in await _ledger(api, survivor["id"]) if e["kind"] == "adjust"]
    assert [(e["points"], e["reference"]) for e in adjusts] == [
        (60, f"merge:{duplicate['id']}"),
        (10, f"merge:{duplicate['id']}"),
    ]
    assert adjusts[-1]["balance_after"] == 90
    # The duplicate's own ledger is closed by the move; its points are not spendable twice.
    rows = await _ledger(api, duplicate["id"])
    assert (rows[-1]["kind"], rows[-1]["points"], rows[-1]["balance_after"]) == ("adjust", -70, 0)
