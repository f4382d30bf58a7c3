"""A purchase is claimed by its fact, a registration by its file: scoring's consumer writes no
``processed_event`` row for either, and one delivered again (the group's offsets rewound, as
after a crash before the commit) changes nothing, whether its batch also holds claimed events
or not; a registration delivered again after its file was merged away does not bring its score
back. Through the real consumer, broker and PostgreSQL."""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_devstack.broker import create_topics
from crm_devstack.fixtures import eventually
from crm_devstack.stack import LocalStack
from crm_libs.db import make_engine, make_sessionmaker
from crm_libs.events.consumer import EventConsumer
from crm_libs.events.envelope import EventEnvelope
from scoring_service.scores.consumed import decode_event
from scoring_service.scores.handlers import (
    claimed_by_its_fact,
    make_batch_handler,
    prepare_batch,
)


def purchase(purchase_id: str, *, customer: str, store: str, total: str) -> EventEnvelope:
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    return EventEnvelope(
        type="purchase.recorded",
        store_id=store,
        customer_id=customer,
        payload={
            "purchase_id": purchase_id,
            "purchased_at": at.isoformat(),
            "purchased_on": at.date().isoformat(),
            "timezone": "UTC",
            "total": total,
            "lines": [{"qty": 1, "days_per_unit": 30}],
        },
    )


@contextlib.asynccontextmanager
async def consuming(
    stack: LocalStack, sessions: async_sessionmaker[AsyncSession], group: str, topic: str
) -> AsyncIterator[None]:
    consumer = EventConsumer(
        name=group,
        topics=[topic],
        bootstrap=stack.broker.bootstrap,
        sessionmaker=sessions,
        handler=make_batch_handler(as_of=None),
        decode=decode_event,
        prepare=prepare_batch,
        idempotent=claimed_by_its_fact,
    )
    task = asyncio.create_task(consumer.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def produce(stack: LocalStack, topic: str, events: list[EventEnvelope]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap)
    await producer.start()
    try:  # sent together: consumed as one batch
        for event in events:
            await producer.send(topic, value=event.to_bytes(), key=b"k")
        await producer.flush()
    finally:
        await producer.stop()


async def committed(stack: LocalStack, group: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.broker.bootstrap, group_id=group)
    await consumer.start()
    try:
        return await consumer.committed(TopicPartition(topic, 0)) or 0
    finally:
        await consumer.stop()


async def rewind(stack: LocalStack, group: str, topic: str, *, to: int) -> None:
    """Commit an earlier offset for the group, as a member of it (the broker takes commits
    from members only), as if its consumer had crashed before committing what follows."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=stack.broker.bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        async with asyncio.timeout(60):
            while not consumer.assignment():
                await consumer.getmany(timeout_ms=200)
        await consumer.commit({TopicPartition(topic, 0): to})
    finally:
        await consumer.stop()


async def state(sessions: async_sessionmaker[AsyncSession], store: str, group: str) -> dict:
    async with sessions() as session:
        scores = await session.execute(
            text(
                "SELECT customer_id, purchase_count, net_spend_365d, value_tier, version"
                " FROM customer_score WHERE store_id = :s"
            ),
            {"s": store},
        )
        claims = await session.execute(
            text("SELECT event_id FROM processed_event WHERE consumer = :g"), {"g": group}
        )
        staged = await session.execute(
            text("SELECT count(*) FROM outbox_event WHERE envelope->>'store_id' = :s"),
            {"s": store},
        )
        facts = await session.execute(
            text("SELECT count(*) FROM purchase_fact WHERE store_id = :s"), {"s": store}
        )
        return {
            "scores": {r[0]: tuple(r[1:]) for r in scores},
            "claims": sorted(r[0] for r in claims),
            "staged": staged.scalar_one(),
            "facts": facts.scalar_one(),
        }


async def test_purchases_are_claimed_by_their_facts_and_a_replay_changes_nothing(
    stack: LocalStack, database_url: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    topic, store, group = f"test.claims.{tag}.v1", f"claims-{tag}", f"test-claims-{tag}"
    a, b = f"{tag}-a", f"{tag}-b"
    await create_topics(stack.broker.bootstrap, [topic], partitions=1)
    engine = make_engine(database_url, pool_size=3)
    sessions = make_sessionmaker(engine)
    registered = EventEnvelope(
        type="customer.registered", store_id=store, customer_id=b, payload={"timezone": "UTC"}
    )
    # Claimed: applied once by its claim (scores/handlers.py).
    updated = EventEnvelope(
        type="customer.updated",
        store_id=store,
        customer_id=b,
        payload={"file": {"version": 2, "referrer_id": None}, "changed": []},
    )
    first = [
        registered,
        updated,
        purchase(f"{tag}-1", customer=a, store=store, total="40.00"),
        purchase(f"{tag}-2", customer=a, store=store, total="25.00"),
        purchase(f"{tag}-3", customer=b, store=store, total="90.00"),
    ]
    later = [
        purchase(f"{tag}-4", customer=b, store=store, total="10.00"),
        purchase(f"{tag}-5", customer=a, store=store, total="60.00"),
    ]
    try:
        async with consuming(stack, sessions, group, topic):
            await produce(stack, topic, first)
            assert await eventually(lambda: reached(stack, group, topic, 5), timeout=60)
            await produce(stack, topic, later)
            assert await eventually(lambda: reached(stack, group, topic, 7), timeout=60)
        applied = await state(sessions, store, group)
        # Only the change is claimed: the registration is its file, the purchases their facts.
        assert applied["claims"] == [str(updated.event_id)]
        assert applied["facts"] == 5
        assert applied["scores"][a][:2] == (3, 125) and applied["scores"][b][:2] == (2, 100)

        # Delivered again: the last batch alone (purchases only), then everything.
        for rewind_to in (5, 0):
            await rewind(stack, group, topic, to=rewind_to)
            assert await committed(stack, group, topic) == rewind_to
            async with consuming(stack, sessions, group, topic):
                assert await eventually(lambda: reached(stack, group, topic, 7), timeout=60)
            assert await state(sessions, store, group) == applied, f"from offset {rewind_to}"
    finally:
        await engine.dispose()


async def reached(stack: LocalStack, group: str, topic: str, count: int) -> bool:
    return await committed(stack, group, topic) >= count


def file_event(
    type_: str, customer: str, store: str, version: int, **payload: object
) -> EventEnvelope:
    file = {"version": version, "referrer_id": None, "uses_competitor_products": False}
    file.update(payload.pop("file", {}))  # type: ignore[call-overload]
    return EventEnvelope(
        type=type_,
        store_id=store,
        customer_id=customer,
        payload={"timezone": "Asia/Shanghai", "file": file, **payload},
    )


async def file_rows(sessions: async_sessionmaker[AsyncSession], store: str) -> dict:
    async with sessions() as session:
        links = await session.execute(
            text(
                "SELECT customer_id, referrer_id, uses_competitor, version FROM customer_link"
                " WHERE store_id = :s"
            ),
            {"s": store},
        )
        districts = await session.execute(
            text(
                "SELECT customer_id, district, version FROM analysis_customer_district"
                " WHERE store_id = :s"
            ),
            {"s": store},
        )
        return {
            "links": {r[0]: tuple(r[1:]) for r in links},
            "districts": {r[0]: tuple(r[1:]) for r in districts},
        }


async def test_registrations_are_claimed_by_their_files_and_a_redelivery_changes_nothing(
    stack: LocalStack, database_url: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    topic, store, group = f"test.files.{tag}.v1", f"files-{tag}", f"test-files-{tag}"
    plain, told, duplicate = f"{tag}-plain", f"{tag}-told", f"{tag}-dup"
    await create_topics(stack.broker.bootstrap, [topic], partitions=1)
    engine = make_engine(database_url, pool_size=3)
    sessions = make_sessionmaker(engine)
    events = [
        file_event("customer.registered", plain, store, 1),
        file_event(
            "customer.registered",
            told,
            store,
            1,
            file={"referrer_id": plain, "uses_competitor_products": True, "district": "徐汇区"},
        ),
        file_event("customer.registered", duplicate, store, 1),
        file_event("customer.merged", duplicate, store, 2, merged_into=plain),
        # A later change that says nothing clears what the registration said.
        file_event("customer.updated", told, store, 2, changed=[]),
    ]
    try:
        async with consuming(stack, sessions, group, topic):
            await produce(stack, topic, events)
            assert await eventually(lambda: reached(stack, group, topic, 5), timeout=60)
            applied = await state(sessions, store, group)
            # The registrations are claimed by their files; the merge and the change are
            # claimed.
            assert applied["claims"] == sorted(str(e.event_id) for e in events[3:])
            # The merged-away file's score is gone; the others are prospects.
            assert {c: s[2] for c, s in applied["scores"].items()} == {
                plain: "prospect",
                told: "prospect",
            }
            # The plain registrations stored no link or district (the merge stores the merged
            # file's link); the change's plain file replaced what the registration said.
            after = await file_rows(sessions, store)
            assert after == {
                "links": {told: (None, False, 2), duplicate: (None, False, 2)},
                "districts": {told: (None, 2)},
            }

            # The same events delivered again (as after a crash before the offsets' commit):
            # nothing changes, and the merged file's registration does not bring its score back.
            await produce(stack, topic, events)
            assert await eventually(lambda: reached(stack, group, topic, 10), timeout=60)
            assert await state(sessions, store, group) == applied
            assert await file_rows(sessions, store) == after
    finally:
        await engine.dispose()
