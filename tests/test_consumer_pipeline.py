"""The consumer's pipeline and claims: the next batch is fetched while one is applied, a
transient failure rewinds both, and a batch holding events applied before is applied again
without them. A consumer group of the test's own in this process, on the real broker and
PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from crm_devstack.broker import create_topics
from crm_devstack.fixtures import eventually
from crm_devstack.stack import LocalStack
from crm_libs.db import make_engine, make_sessionmaker
from crm_libs.events.consumer import EventConsumer, ProcessedEvent, first_delivery
from crm_libs.events.envelope import EventEnvelope


@dataclass
class Group:
    stack: LocalStack
    topic: str
    engine: AsyncEngine
    name: str

    async def produce(self, events: list[EventEnvelope]) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.stack.broker.bootstrap)
        await producer.start()
        try:
            for event in events:  # one key: one partition, in this order
                await producer.send_and_wait(self.topic, value=event.to_bytes(), key=b"k")
        finally:
            await producer.stop()

    async def applied(self) -> list[tuple[str, bool]]:
        """(event id, applied as a first delivery) in the order applied."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(text("SELECT event_id, first FROM applied ORDER BY n"))
            return [(r.event_id, r.first) for r in rows]

    async def committed(self) -> int:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.stack.broker.bootstrap, group_id=self.name
        )
        await consumer.start()
        try:
            return await consumer.committed(TopicPartition(self.topic, 0)) or 0
        finally:
            await consumer.stop()


@contextlib.asynccontextmanager
async def group_of_its_own(stack: LocalStack) -> AsyncIterator[Group]:
    name = uuid.uuid4().hex[:12]
    topic = f"test.{name}.v1"
    await create_topics(stack.broker.bootstrap, [topic], partitions=1)
    stack.postgres.create_database(f"t_{name}")
    engine = make_engine(stack.postgres.url(f"t_{name}"), pool_size=2)
    async with engine.begin() as conn:
        await conn.run_sync(ProcessedEvent.metadata.create_all, [ProcessedEvent.__table__])
        # No key on purpose: an event applied twice would show as two rows.
        await conn.execute(
            text("CREATE TABLE applied (n serial, event_id text NOT NULL, first boolean NOT NULL)")
        )
    try:
        yield Group(stack=stack, topic=topic, engine=engine, name=f"test-{name}")
    finally:
        await engine.dispose()


async def record(session: AsyncSession, batch: list[EventEnvelope]) -> None:
    await session.execute(
        text("INSERT INTO applied (event_id, first) SELECT unnest(CAST(:ids AS text[])), :first"),
        {"ids": [str(e.event_id) for e in batch], "first": first_delivery(session)},
    )


@contextlib.asynccontextmanager
async def consuming(group: Group, handler, *, max_records: int) -> AsyncIterator[None]:
    consumer = EventConsumer(
        name=group.name,
        topics=[group.topic],
        bootstrap=group.stack.broker.bootstrap,
        sessionmaker=make_sessionmaker(group.engine),
        handler=handler,
        max_records=max_records,
        retry_initial_seconds=0.2,
        retry_max_seconds=1,
    )
    task = asyncio.create_task(consumer.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def events(n: int) -> list[EventEnvelope]:
    return [EventEnvelope(type="test.recorded", store_id="s", customer_id="c") for _ in range(n)]


async def test_a_batch_with_events_applied_before_is_applied_again_without_them(
    stack: LocalStack,
) -> None:
    async with group_of_its_own(stack) as group:
        sent = events(5)
        async with group.engine.begin() as conn:  # two of them were applied before
            await conn.execute(
                text("INSERT INTO processed_event (consumer, event_id) VALUES (:g, :a), (:g, :b)"),
                {"g": group.name, "a": str(sent[1].event_id), "b": str(sent[3].event_id)},
            )
        await group.produce(sent)
        async with consuming(group, record, max_records=100):
            assert await eventually(lambda: _committed_all(group, len(sent)), timeout=60)
        # Claimed with one COPY first, which failed on the two; then with conflict checks.
        assert await group.applied() == [
            (str(e.event_id), False) for i, e in enumerate(sent) if i not in (1, 3)
        ]


async def test_a_transient_failure_rewinds_the_batch_and_the_one_fetched_behind_it(
    stack: LocalStack,
) -> None:
    async with group_of_its_own(stack) as group:
        sent = events(12)
        await group.produce(sent)
        failures = 1

        async def fail_once_while_the_next_batch_is_fetched(
            session: AsyncSession, batch: list[EventEnvelope]
        ) -> None:
            nonlocal failures
            await record(session, batch)
            if failures:
                failures -= 1
                await asyncio.sleep(1)  # the next batch is fetched and decoded meanwhile
                raise asyncpg.exceptions.DeadlockDetectedError("deadlock detected (test)")

        async with consuming(group, fail_once_while_the_next_batch_is_fetched, max_records=3):
            assert await eventually(lambda: _committed_all(group, len(sent)), timeout=60)
        assert failures == 0
        # Every event once, in the order sent, each batch claimed with one COPY.
        assert await group.applied() == [(str(e.event_id), True) for e in sent]


async def _committed_all(group: Group, count: int) -> bool:
    return await group.committed() == count
