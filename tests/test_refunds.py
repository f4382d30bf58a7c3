"""Refunds and returns through the gateway: whole or by product, never more than was bought
(earlier and concurrent refunds counted), keyed retries replayed, ``purchase.refunded`` on the
real broker, and scoring and engagement passing over it without a dead letter."""

import asyncio
import uuid
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from crm_devstack.fixtures import eventually
from crm_devstack.stack import LocalStack
from crm_libs.events.envelope import EventEnvelope, Topics
from tests.broker import records_of
from tests.builders import (
    client_as,
    create_account,
    create_customer,
    create_product,
    create_store,
    days_ago,
    score_with_purchases,
    sign_in,
)


async def _sale(api: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A purchase of 3 × A at a negotiated 90.00 (the catalogue says 100.00) and 1 × B."""
    store = await create_store(api)
    a = await create_product(api, unit_price="100.00", days_per_unit=30)
    b = await create_product(api, unit_price="50.00", days_per_unit=10)
    customer = await create_customer(api, store_id=store["id"])
    response = await api.post(
        f"/customers/{customer['id']}/purchases",
        json={
            "purchased_at": days_ago(3),
            "items": [
                {"sku": a["sku"], "qty": 3, "unit_price": "90.00"},
                {"sku": b["sku"], "qty": 1},
            ],
        },
    )
    assert response.status_code == 201, response.text
    purchase = response.json()
    assert purchase["total"] == "320.00"
    return purchase, a, b


def _refund(api: httpx.AsyncClient, purchase_id: str, body: dict[str, Any], **kw: Any) -> Any:
    return api.post(f"/purchases/{purchase_id}/refund", json=body, **kw)


async def _listed(api: httpx.AsyncClient, purchase: dict[str, Any]) -> dict[str, Any]:
    items = (await api.get(f"/customers/{purchase['customer_id']}/purchases")).json()["items"]
    listed: dict[str, Any] = next(p for p in items if p["id"] == purchase["id"])
    return listed


def _refunded(listed: dict[str, Any]) -> dict[str, tuple[int, str]]:
    return {i["sku"]: (i["refunded_qty"], i["refunded_amount"]) for i in listed["items"]}


async def test_a_whole_refund_returns_every_line_once(api: httpx.AsyncClient) -> None:
    purchase, a, b = await _sale(api)
    response = await _refund(
        api, purchase["id"], {"reason": "family_objection", "note": "子女反对"}
    )
    assert response.status_code == 201, response.text
    refund = response.json()
    assert refund["purchase_id"] == purchase["id"] and refund["reason"] == "family_objection"
    assert refund["note"] == "子女反对" and refund["refunded_by"] and refund["refunded_at"]
    assert refund["total"] == "320.00"
    assert [(i["sku"], i["qty"], i["amount"]) for i in refund["items"]] == [
        (a["sku"], 3, "270.00"),
        (b["sku"], 1, "50.00"),
    ]
    listed = await _listed(api, purchase)
    assert listed["refunded_total"] == "320.00"
    assert _refunded(listed) == {a["sku"]: (3, "270.00"), b["sku"]: (1, "50.00")}

    again = await _refund(api, purchase["id"], {"reason": "other"})
    assert again.status_code == 409, again.text
    assert again.headers["content-type"] == "application/problem+json"
    assert "nothing is left" in again.json()["detail"]


async def test_a_partial_refund_at_the_price_paid_and_never_more_than_is_left(
    api: httpx.AsyncClient,
) -> None:
    purchase, a, b = await _sale(api)
    first = await _refund(
        api, purchase["id"], {"reason": "no_effect", "items": [{"sku": a["sku"], "qty": 1}]}
    )
    assert first.status_code == 201, first.text
    assert first.json()["total"] == "90.00"  # the negotiated price, not the catalogue's

    over = await _refund(
        api, purchase["id"], {"reason": "no_effect", "items": [{"sku": a["sku"], "qty": 3}]}
    )
    assert over.status_code == 409, over.text
    problem = over.json()
    assert a["sku"] in problem["detail"] and "2 left" in problem["detail"]
    assert problem["errors"][0]["field"] == "items.0.qty"

    # Two entries for one product count together.
    split = {
        "reason": "quality",
        "items": [{"sku": a["sku"], "qty": 1}, {"sku": a["sku"], "qty": 2}],
    }
    assert (await _refund(api, purchase["id"], split)).status_code == 409
    stranger = await _refund(
        api, purchase["id"], {"reason": "quality", "items": [{"sku": "NOT-SOLD", "qty": 1}]}
    )
    assert stranger.status_code == 422 and stranger.json()["errors"][0]["field"] == "items.0.sku"
    # A misspelt field must not turn into a whole refund.
    typo = await _refund(
        api, purchase["id"], {"reason": "quality", "itmes": [{"sku": a["sku"], "qty": 1}]}
    )
    assert typo.status_code == 422
    assert (await _refund(api, purchase["id"], {"reason": "changed_mind"})).status_code == 422
    assert _refunded(await _listed(api, purchase)) == {
        a["sku"]: (1, "90.00"),
        b["sku"]: (0, "0.00"),
    }

    rest = await _refund(api, purchase["id"], {"reason": "pushed_too_hard"})
    assert rest.status_code == 201, rest.text
    assert rest.json()["total"] == "230.00"
    assert [(i["sku"], i["qty"]) for i in rest.json()["items"]] == [(a["sku"], 2), (b["sku"], 1)]
    assert (await _listed(api, purchase))["refunded_total"] == "320.00"


async def test_a_keyed_refund_is_done_once_and_replayed(api: httpx.AsyncClient) -> None:
    purchase, a, _ = await _sale(api)
    body = {"reason": "quality", "items": [{"sku": a["sku"], "qty": 1}]}
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = await _refund(api, purchase["id"], body, headers=key)
    second = await _refund(api, purchase["id"], body, headers=key)
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json() == first.json()
    assert _refunded(await _listed(api, purchase))[a["sku"]] == (1, "90.00")
    other = await _refund(api, purchase["id"], {**body, "reason": "other"}, headers=key)
    assert other.status_code == 409


async def test_concurrent_refunds_never_exceed_the_purchase(api: httpx.AsyncClient) -> None:
    purchase, a, b = await _sale(api)
    one_of_a = {"reason": "quality", "items": [{"sku": a["sku"], "qty": 1}]}
    answers = await asyncio.gather(*(_refund(api, purchase["id"], one_of_a) for _ in range(5)))
    assert sorted(r.status_code for r in answers) == [201, 201, 201, 409, 409]
    wholes = await asyncio.gather(
        *(_refund(api, purchase["id"], {"reason": "other"}) for _ in range(2))
    )
    assert sorted(r.status_code for r in wholes) == [201, 409]
    assert _refunded(await _listed(api, purchase)) == {
        a["sku"]: (3, "270.00"),
        b["sku"]: (1, "50.00"),
    }


async def test_refunds_are_for_managers_and_the_store_till_within_their_store(
    api: httpx.AsyncClient,
) -> None:
    purchase, a, _ = await _sale(api)
    body = {"reason": "quality", "items": [{"sku": a["sku"], "qty": 1}]}
    store_id = purchase["store_id"]
    staff = await create_account(api, role="staff", store_id=store_id)
    async with client_as(api, token=(await sign_in(api, staff))["access_token"]) as client:
        assert (await _refund(client, purchase["id"], body)).status_code == 403
    key = (await api.post("/api-keys", json={"store_id": store_id, "name": "till"})).json()
    async with client_as(api, key=key["key"]) as till:
        assert (await _refund(till, purchase["id"], body)).status_code == 201
    other = await create_store(api)
    manager = await create_account(api, role="store_manager", store_id=other["id"])
    async with client_as(api, token=(await sign_in(api, manager))["access_token"]) as client:
        assert (await _refund(client, purchase["id"], body)).status_code == 404
    assert (await _refund(api, "no-such-purchase", body)).status_code == 404


async def test_purchase_refunded_reaches_the_broker_and_its_consumers_pass_over_it(
    stack: LocalStack, api: httpx.AsyncClient
) -> None:
    purchase, a, _ = await _sale(api)
    await score_with_purchases(api, purchase["customer_id"])
    response = await _refund(
        api, purchase["id"], {"reason": "no_effect", "items": [{"sku": a["sku"], "qty": 2}]}
    )
    assert response.status_code == 201, response.text
    refund = response.json()

    record = await _published(stack, refund["id"])
    event = EventEnvelope.from_bytes(record.value)
    assert event.type == "purchase.refunded"
    assert (event.store_id, event.customer_id) == (purchase["store_id"], purchase["customer_id"])
    payload = event.payload
    assert payload["purchase_id"] == purchase["id"] and payload["refund_id"] == refund["id"]
    assert payload["reason"] == "no_effect" and payload["total"] == "180.00"
    assert payload["timezone"] == "Asia/Shanghai" and payload["refunded_at"]
    assert payload["purchased_on"] and payload["refunded_on"]
    assert payload["lines"] == [
        {
            "sku": a["sku"],
            "category": "supplements",
            "qty": 2,
            "unit_price": "90.00",
            "amount": "180.00",
            "days_per_unit": 30,
        }
    ]

    # Scoring (which applies it: tests/test_tier_rules.py) and engagement commit past it...
    partition = TopicPartition(Topics.PURCHASES, record.partition)
    for group in ("scoring", "engagement"):

        async def committed_past(group: str = group) -> bool:
            return await _committed(stack, group, partition) > record.offset

        assert await eventually(committed_past, timeout=60)
    # ...without dead-lettering it.
    dead = await _values(stack, Topics.dead_letter(Topics.PURCHASES))
    assert not [v for v in dead if refund["id"].encode() in v]


async def _published(stack: LocalStack, marker: str) -> Any:
    records = await records_of(
        stack, Topics.PURCHASES, until=lambda rs: any(marker.encode() in r.value for r in rs)
    )
    return next(r for r in records if marker.encode() in r.value)


async def _committed(stack: LocalStack, group: str, partition: TopicPartition) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.broker.bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group, partitions=[partition])
    finally:
        await admin.close()
    found = offsets.get(partition)
    return found.offset if found is not None else -1


async def _values(stack: LocalStack, topic: str) -> list[bytes]:
    """Everything on ``topic`` up to its current end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.broker.bootstrap, enable_auto_commit=False)
    await consumer.start()
    values: list[bytes] = []
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer.topics()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        while [tp for tp in tps if await consumer.position(tp) < end[tp]]:
            batches = await consumer.getmany(timeout_ms=500)
            values.extend(r.value for records in batches.values() for r in records)
    finally:
        await consumer.stop()
    return values
