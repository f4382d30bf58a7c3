"""Batches as the service consumes them: decoded, made ready before their transaction
(handlers.prepare_batch) and applied as a first delivery, through the real consumer, broker and
PostgreSQL. What was made ready must give what folding in the transaction gives, also when a
purchase turns out to belong to a merge's survivor."""

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import text

from crm_devstack.broker import create_topics
from crm_devstack.fixtures import eventually
from crm_devstack.stack import LocalStack
from crm_libs.db import make_engine, make_sessionmaker
from crm_libs.events.consumer import EventConsumer
from crm_libs.events.envelope import EventEnvelope
from scoring_service.scores.consumed import decode_event
from scoring_service.scores.handlers import make_batch_handler, prepare_batch


def purchase(purchase_id: str, *, customer: str, store: str, days_ago: int) -> EventEnvelope:
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=days_ago)
    return EventEnvelope(
        type="purchase.recorded",
        store_id=store,
        customer_id=customer,
        payload={
            "purchase_id": purchase_id,
            "purchased_at": at.isoformat(),
            "purchased_on": at.date().isoformat(),
            "timezone": "UTC",
            "total": "40.00",
            "lines": [{"qty": 1, "days_per_unit": 30}],
        },
    )


async def test_batches_made_ready_before_their_transaction(
    stack: LocalStack, database_url: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    topic, store = f"test.scoring.{tag}.v1", f"prep-{tag}"
    await create_topics(stack.broker.bootstrap, [topic], partitions=1)
    engine = make_engine(database_url, pool_size=3)
    sessions = make_sessionmaker(engine)
    dupe, surv, other = f"{tag}-dupe", f"{tag}-surv", f"{tag}-other"
    merge = EventEnvelope(
        type="customer.merged", store_id=store, customer_id=dupe, payload={"merged_into": surv}
    )
    events = [
        merge,
        purchase(f"{tag}-1", customer=surv, store=store, days_ago=9),
        purchase(f"{tag}-2", customer=other, store=store, days_ago=8),
        # Made ready for the duplicate, applied to the survivor.
        purchase(f"{tag}-3", customer=dupe, store=store, days_ago=7),
        purchase(f"{tag}-4", customer=other, store=store, days_ago=6),
    ]
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value=merge.to_bytes(), key=b"k")
    finally:
        await producer.stop()
    group = f"test-{tag}"
    consumer = EventConsumer(
        name=group,
        topics=[topic],
        bootstrap=stack.broker.bootstrap,
        sessionmaker=sessions,
        handler=make_batch_handler(as_of=None),
        decode=decode_event,
        prepare=prepare_batch,
    )
    task = asyncio.create_task(consumer.run())
    try:
        assert await eventually(lambda: committed(stack, group, topic, 1), timeout=60)
        producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap)
        await producer.start()
        try:  # one batch: sent together, consumed together
            for event in events[1:]:
                await producer.send(topic, value=event.to_bytes(), key=b"k")
            await producer.flush()
        finally:
            await producer.stop()
        assert await eventually(lambda: committed(stack, group, topic, len(events)), timeout=60)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    try:
        async with sessions() as session:
            rows = await session.execute(
                text(
                    "SELECT customer_id, purchase_count, net_spend_365d, supply_runs_out_on"
                    " FROM customer_score WHERE store_id = :s"
                ),
                {"s": store},
            )
            scores = {r.customer_id: tuple(r[1:]) for r in rows}
        # Each second purchase came while the first's 30 days lasted: 60 days from the first.
        first = (datetime.now(UTC) - timedelta(days=9)).date()
        assert scores == {
            surv: (2, Decimal("80.00"), first + timedelta(days=60)),
            other: (2, Decimal("80.00"), first + timedelta(days=61)),
        }
    finally:
        await engine.dispose()


async def committed(stack: LocalStack, group: str, topic: str, count: int) -> bool:
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.broker.bootstrap, group_id=group)
    await consumer.start()
    try:
        return (await consumer.committed(TopicPartition(topic, 0)) or 0) >= count
    finally:
        await consumer.stop()
