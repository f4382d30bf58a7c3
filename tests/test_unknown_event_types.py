"""A type its topic's contract does not name is dead-lettered by every consumer of the topic,
with an error naming the type and the topic, and the next events are applied; a type the
contract names that a consumer has no use for is skipped, not dead-lettered (real broker, the
services' own consumers, effects read through the gateway)."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from crm_devstack.fixtures import eventually
from crm_devstack.stack import LocalStack
from crm_libs.db import asyncpg_dsn
from crm_libs.events.consumer import decode_envelope
from crm_libs.events.dead_letters import CONSUMER_HEADER, ERROR_HEADER
from crm_libs.events.envelope import EventEnvelope, Topics
from crm_libs.events.event_types import UnknownEventType
from scoring_service.scores.consumed import decode_event
from tests.broker import at_least, publish, records_of
from tests.builders import (
    create_customer,
    create_product,
    create_store,
    days_ago,
    record_purchase,
    score_with_purchases,
    scored_customer,
    unique,
)
from tests.test_classifications import member_event, score_where

# (event id, consumer group, error) of one dead letter.
Letter = tuple[str, str, str]


def unknown(type_: str, customer: dict[str, Any]) -> EventEnvelope:
    """An event of a type no contract names, in a well-formed envelope."""
    return EventEnvelope(
        type=type_, store_id=customer["store_id"], customer_id=customer["id"], payload={}
    )


async def letters_of(
    stack: LocalStack, topic: str, customer_id: str, *, count: int
) -> list[Letter]:
    """The dead letters of ``topic`` keyed by the customer, once there are ``count`` of them."""
    records = await records_of(
        stack, Topics.dead_letter(topic), key=customer_id, until=at_least(count)
    )
    letters: list[Letter] = []
    for record in records:
        headers = {k: v.decode() for k, v in record.headers}
        event_id = str(EventEnvelope.from_bytes(record.value).event_id)
        letters.append((event_id, headers[CONSUMER_HEADER], headers[ERROR_HEADER]))
    return letters


def assert_dead_lettered(
    letters: list[Letter], event: EventEnvelope, topic: str, *, by: set[str]
) -> None:
    """``letters`` are ``event``'s, one per consumer group in ``by``, each naming its type and
    topic: nothing else of the customer was dead-lettered."""
    assert {event_id for event_id, _, _ in letters} == {str(event.event_id)}
    assert sorted(group for _, group, _ in letters) == sorted(by)
    for _, _, error in letters:
        assert repr(event.type) in error and topic in error, error


async def published(stack: LocalStack, topic: str, customer_id: str, type_: str) -> list[str]:
    """The ids of the events of ``type_`` keyed by the customer on ``topic`` so far."""
    records = await records_of(stack, topic, key=customer_id, seconds=2)
    events = [EventEnvelope.from_bytes(r.value) for r in records]
    return [str(e.event_id) for e in events if e.type == type_]


async def engagement_applied(
    stack: LocalStack, topic: str, customer_id: str, type_: str, *, count: int
) -> bool:
    """Whether engagement's consumer group applied ``count`` events of ``type_`` keyed by the
    customer: their claims commit in the transaction of their effects (a file's events are
    claimed by the version engagement's copy of the file reached, not one by one)."""
    ids = await published(stack, topic, customer_id, type_)
    if len(ids) < count:
        return False
    if topic == Topics.CUSTOMERS:
        return await engagement_copy_version(stack, customer_id) == await file_version(
            stack, customer_id
        )
    connection = await asyncpg.connect(asyncpg_dsn(stack.database_url("engagement")))
    try:
        claimed = await connection.fetchval(
            "SELECT count(*) FROM processed_event WHERE consumer = 'engagement'"
            " AND event_id = ANY($1::text[])",
            ids,
        )
    finally:
        await connection.close()
    return bool(claimed == count)


async def engagement_copy_version(stack: LocalStack, customer_id: str) -> int | None:
    connection = await asyncpg.connect(asyncpg_dsn(stack.database_url("engagement")))
    try:
        version: int | None = await connection.fetchval(
            "SELECT version FROM customer_file WHERE customer_id = $1", customer_id
        )
    finally:
        await connection.close()
    return version


async def file_version(stack: LocalStack, customer_id: str) -> int:
    connection = await asyncpg.connect(asyncpg_dsn(stack.database_url("customer")))
    try:
        version: int = await connection.fetchval(
            "SELECT version FROM customer WHERE id = $1", customer_id
        )
    finally:
        await connection.close()
    return version


async def listed(api: httpx.AsyncClient, **params: Any) -> list[str]:
    response = await api.get("/customers", params=params)
    assert response.status_code == 200, response.text
    return [c["id"] for c in response.json()["items"]]


def test_a_type_is_checked_against_the_topic_it_was_read_from() -> None:
    at = "2026-05-01T19:30:00+08:00"

    def raw(type_: str, payload: dict[str, Any], event_id: str | None = None) -> bytes:
        return EventEnvelope(
            **({"event_id": event_id} if event_id else {}),
            type=type_,
            store_id="s1",
            customer_id="c1",
            payload=payload,
        ).to_bytes()

    visit = raw("visit.recorded", {"visit_id": "v1", "occurred_at": at})
    # Scoring: a type of the contract it has no use for is nothing to do; one the topic's
    # contract does not name is refused, on either decoding path (a UUID spelled in capitals
    # takes the one through EventEnvelope), and so is a type of another topic's contract.
    assert decode_event(visit, Topics.ENGAGEMENT).signal is None
    capitals = str(uuid.uuid4()).upper()
    for refused, topic in (
        (raw("visit.planned", {}), Topics.ENGAGEMENT),
        (raw("visit.planned", {}, capitals), Topics.ENGAGEMENT),
        (raw("purchase.voided", {"purchase_id": "p1"}), Topics.PURCHASES),
        (raw("customer.renamed", {}, capitals), Topics.CUSTOMERS),
        (visit, Topics.CUSTOMERS),
    ):
        with pytest.raises(UnknownEventType, match=topic) as raised:
            decode_event(refused, topic)
        assert raised.value.topic == topic
    # The other services' default decoder: the same rule.
    assert decode_envelope(visit, Topics.ENGAGEMENT).type == "visit.recorded"
    with pytest.raises(UnknownEventType, match="'score.reset' on crm.scores.v1"):
        decode_envelope(raw("score.reset", {}), Topics.SCORES)
    # A topic without a contract (a test's own) takes any type.
    assert decode_envelope(raw("test.recorded", {}), "test.topic.v1").type == "test.recorded"


async def test_unknown_purchase_and_score_types_are_dead_lettered_and_the_sale_still_counts(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    store = await create_store(api)
    product = await create_product(api)
    customer = await create_customer(api, store_id=store["id"])
    voided = unknown("purchase.voided", customer)
    reset = unknown("score.reset", customer)
    await publish(stack, Topics.PURCHASES, voided)
    await publish(stack, Topics.SCORES, reset)
    # Behind them on the customer's partitions: the sale, then the score.changed it causes.
    await record_purchase(api, customer_id=customer["id"], sku=product["sku"])

    await score_with_purchases(api, customer["id"], 1)  # scoring
    assert await eventually(  # engagement
        lambda: engagement_applied(
            stack, Topics.PURCHASES, customer["id"], "purchase.recorded", count=1
        ),
        timeout=60,
    )

    async def vip_in_the_copy() -> bool:  # the customer service: the store's only buyer
        return customer["id"] in await listed(api, store_id=store["id"], value_tier="vip")

    assert await eventually(vip_in_the_copy, timeout=60)
    letters = await letters_of(stack, Topics.PURCHASES, customer["id"], count=2)
    assert_dead_lettered(letters, voided, Topics.PURCHASES, by={"scoring", "engagement"})
    # Both readers of the scores topic: the customer service's copy and engagement's care.
    letters = await letters_of(stack, Topics.SCORES, customer["id"], count=2)
    assert_dead_lettered(letters, reset, Topics.SCORES, by={"customer", "engagement"})


async def test_an_unknown_customer_event_type_is_dead_lettered_and_the_next_change_applied(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    store = await create_store(api)
    product = await create_product(api)
    customer = await create_customer(
        api,
        store_id=store["id"],
        health_consent=True,
        health={"other_health_products": [f"某品牌鱼油{uuid.uuid4().hex[:6]}"]},
    )
    await record_purchase(api, customer_id=customer["id"], sku=product["sku"])
    await score_with_purchases(api, customer["id"])
    await score_where(api, customer["id"], loyalty="switcher")

    renamed = unknown("customer.renamed", customer)
    await publish(stack, Topics.CUSTOMERS, renamed)
    # customer.updated behind it: no competitors' products any more.
    patched = await api.patch(
        f"/customers/{customer['id']}", json={"health": {"other_health_products": []}}
    )
    assert patched.status_code == 200, patched.text

    await score_where(api, customer["id"], loyalty="floating")  # scoring
    assert await eventually(  # engagement
        lambda: engagement_applied(
            stack, Topics.CUSTOMERS, customer["id"], "customer.updated", count=1
        ),
        timeout=60,
    )
    letters = await letters_of(stack, Topics.CUSTOMERS, customer["id"], count=2)
    assert_dead_lettered(letters, renamed, Topics.CUSTOMERS, by={"scoring", "engagement"})


async def test_an_unknown_engagement_type_is_dead_lettered_and_the_others_types_skipped(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    store, product, customer, _ = await scored_customer(api)

    def visit(**collected: Any) -> EventEnvelope:
        return EventEnvelope(
            type="visit.recorded",
            store_id=customer["store_id"],
            customer_id=customer["id"],
            payload={
                "visit_id": unique("V"),
                "staff_id": None,
                "occurred_at": days_ago(0),
                "collected": collected,
            },
        )

    evening = datetime.now(UTC) - timedelta(days=2)
    postponed = unknown("event.postponed", customer)
    # Before the unknown type, one type of the contract each consumer has no use for (scoring:
    # the visit; the customer service: the attendance); behind it, one each applies.
    await publish(
        stack,
        Topics.ENGAGEMENT,
        visit(deep={"hobbies": ["钓鱼"]}),
        member_event("event.attended", customer, event_id=f"ev-{uuid.uuid4()}", at=evening),
        postponed,
        visit(address={"city": "杭州"}),
        member_event("event.guest_brought", customer, event_id=f"ev-{uuid.uuid4()}", at=evening),
    )

    await score_where(api, customer["id"], ladder_level="C")  # scoring: attended, then a guest

    async def both_visits_applied() -> bool:  # the customer service
        response = await api.get(f"/customers/{customer['id']}")
        assert response.status_code == 200, response.text
        file = response.json()
        hobbies = (file.get("deep") or {}).get("hobbies")
        return hobbies == ["钓鱼"] and (file.get("address") or {}).get("city") == "杭州"

    assert await eventually(both_visits_applied, timeout=60)
    # Only the unknown type: neither the visits (scoring) nor the signals (the customer
    # service) were dead-lettered.
    letters = await letters_of(stack, Topics.ENGAGEMENT, customer["id"], count=2)
    assert_dead_lettered(letters, postponed, Topics.ENGAGEMENT, by={"scoring", "customer"})
