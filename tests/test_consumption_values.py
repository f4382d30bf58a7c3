"""The score's consumption values without a model, end to end (real broker, through the gateway):
purchases recorded through the API, member events published on crm.engagement.v1 by the test
(as the engagement service will); the next product or category and its rule, the capability,
the expected date and the member event to invite to before it."""

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx

from crm_devstack.fixtures import eventually
from crm_devstack.stack import LocalStack
from crm_libs.db import asyncpg_dsn
from crm_libs.events.envelope import EventEnvelope, Topics
from tests.broker import publish
from tests.builders import (
    create_customer,
    create_store,
    days_ago,
    record_purchase,
    score_with_purchases,
    unique,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


async def product(api: httpx.AsyncClient, *, category: str, days_per_unit: int) -> str:
    response = await api.post(
        "/products",
        json={
            "sku": unique("SKU"),
            "name": category,
            "category": category,
            "unit_price": "100.00",
            "days_per_unit": days_per_unit,
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["sku"])


def announced(type_: str, store_id: str, event_id: str, **payload: Any) -> EventEnvelope:
    """``event.scheduled`` / ``event.cancelled`` as deploy/README.md fixes them."""
    return EventEnvelope(
        type=type_,
        store_id=store_id,
        customer_id=event_id,  # the member event's id: the partition key
        payload={"event_id": event_id, **payload},
    )


async def predictions(api: httpx.AsyncClient, customer_id: str) -> dict[str, Any]:
    response = await api.get(f"/customers/{customer_id}/score")
    assert response.status_code == 200, response.text
    return dict(response.json()["predictions"])


async def test_next_product_capability_expected_date_and_the_event_to_invite_to(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    store = (await create_store(api))["id"]
    fish = await product(api, category="oils", days_per_unit=60)
    calcium = await product(api, category="minerals", days_per_unit=30)
    rebuyer = await create_customer(api, store_id=store)
    once = await create_customer(api, store_id=store)
    movers = [await create_customer(api, store_id=store) for _ in range(2)]
    prospect = await create_customer(api, store_id=store)
    referred = await create_customer(api, store_id=store, referrer_id=rebuyer["id"])

    # The rebuyer buys fish oil twice; two others move from fish oil to calcium; one buys once.
    for customer, skus in (
        (rebuyer, [fish, fish]),
        (movers[0], [fish, calcium]),
        (movers[1], [fish, calcium]),
        (once, [fish]),
    ):
        for n, sku in enumerate(skus):
            await record_purchase(
                api, customer_id=customer["id"], sku=sku, purchased_at=days_ago(20 - 10 * n)
            )
    for customer, count in ((rebuyer, 2), (movers[0], 2), (movers[1], 2), (once, 1)):
        await score_with_purchases(api, customer["id"], count)

    # The customer's own habit needs no store figures.
    got = await predictions(api, rebuyer["id"])
    assert (got["next_product_sku"], got["next_category"], got["next_product_basis"]) == (
        fish,
        "oils",
        "rebuy",
    )
    assert got["capability"] == "repeat"
    score = (await api.get(f"/customers/{rebuyer['id']}/score")).json()
    assert got["next_purchase_on"] == score["supply_runs_out_on"] is not None
    # Beside the model's fields, which stay.
    assert {"p_alive", "expected_purchases_90d", "expected_order_value", "clv_12m"} <= set(got)

    # The store's figures, computed by the daily ageing or, here, a recompute.
    done = await api.post("/scores/recompute", json={"store_id": store})
    assert done.status_code == 200, done.text
    got = await predictions(api, once["id"])
    # After fish oil the store's customers bought calcium (2) more than fish oil (1): a product
    # line this customer never bought.
    assert (got["next_product_sku"], got["next_category"], got["next_product_basis"]) == (
        calcium,
        "minerals",
        "successor",
    )
    assert got["capability"] == "compound"
    for customer, capability in ((prospect, "initial"), (referred, "referral")):
        got = await predictions(api, customer["id"])
        # A file with no purchase: the store's most common first purchase, no date, no event.
        assert (got["next_product_sku"], got["capability"]) == (fish, capability)
        assert got["next_purchase_on"] is None and got["next_event"] is None

    # Member events: one soon (cancelled), one before the run-out, one after it.
    runs_out = date.fromisoformat(score["supply_runs_out_on"])
    soon = datetime.now(UTC) + timedelta(days=2)
    before = datetime.now(UTC) + timedelta(days=5)
    after = datetime.combine(runs_out + timedelta(days=1), datetime.min.time(), SHANGHAI)
    ids = {name: f"ev-{name}-{uuid.uuid4()}" for name in ("soon", "before", "after")}
    await publish(
        stack,
        Topics.ENGAGEMENT,
        announced("event.scheduled", store, ids["soon"], starts_at=soon.isoformat()),
        announced(
            "event.scheduled", store, ids["before"], starts_at=before.isoformat(), title="联谊会"
        ),
        announced("event.scheduled", store, ids["after"], starts_at=after.isoformat()),
        announced("event.cancelled", store, ids["soon"]),
    )

    async def stored() -> bool:
        db = await asyncpg.connect(asyncpg_dsn(stack.database_url("scoring")))
        try:
            rows = await db.fetch(
                "SELECT event_id, cancelled_at IS NOT NULL AS cancelled FROM member_event "
                "WHERE event_id = ANY($1::text[])",
                list(ids.values()),
            )
        finally:
            await db.close()
        return {r["event_id"]: r["cancelled"] for r in rows} == {
            ids["soon"]: True,
            ids["before"]: False,
            ids["after"]: False,
        }

    await eventually(stored, timeout=60)
    event = (await predictions(api, rebuyer["id"]))["next_event"]
    # The cancelled one is not named, nor the one after the run-out day.
    assert event is not None and event["event_id"] == ids["before"]
    assert event["on"] == before.astimezone(SHANGHAI).date().isoformat()
    assert event["title"] == "联谊会"
