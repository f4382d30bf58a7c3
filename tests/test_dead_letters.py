"""Dead letters are for an event's own faults: a lost database is waited out, and what was
dead-lettered goes back into its topic with ``crm-dlq`` once the cause is fixed."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from crm_devstack.broker import create_topics
from crm_devstack.fixtures import eventually, throwaway_stack
from crm_devstack.stack import LocalStack
from crm_libs.db import make_engine, make_sessionmaker
from crm_libs.events.consumer import BatchHandler, EventConsumer, ProcessedEvent
from crm_libs.events.dead_letters import CONSUMER_HEADER, ERROR_HEADER
from crm_libs.events.envelope import EventEnvelope, Topics
from tests.broker import publish
from tests.builders import create_customer, create_product, create_store, record_purchase, score_of

CRM_DLQ = str(Path(sys.executable).with_name("crm-dlq"))


@dataclass
class Bench:
    """A topic and a database of a test's own, with a consumer group run in this process."""

    stack: LocalStack
    topic: str
    engine: AsyncEngine
    group: str

    async def produce(self, *events: EventEnvelope) -> None:
        await publish(self.stack, self.topic, *events)

    @contextlib.asynccontextmanager
    async def consuming(self, handler: BatchHandler) -> AsyncIterator[None]:
        consumer = EventConsumer(
            name=self.group,
            topics=[self.topic],
            bootstrap=self.stack.broker.bootstrap,
            sessionmaker=make_sessionmaker(self.engine),
            handler=handler,
            retry_max_seconds=2,
        )
        task = asyncio.create_task(consumer.run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def applied(self) -> list[str]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(text("SELECT event_id FROM applied ORDER BY event_id"))
            return [r.event_id for r in rows]

    async def dead_letters(self) -> list[tuple[bytes, dict[str, str]]]:
        return await _read_topic(self.stack, Topics.dead_letter(self.topic))

    def metric(self, name: str) -> float:
        """The sum over partitions of one of this consumer group's counters."""
        return sum(
            sample.value
            for metric in REGISTRY.collect()
            for sample in metric.samples
            if sample.name == name and sample.labels.get("consumer") == self.group
        )


@contextlib.asynccontextmanager
async def _bench(stack: LocalStack) -> AsyncIterator[Bench]:
    name = uuid.uuid4().hex[:12]
    topic = f"test.{name}.v1"
    await create_topics(stack.broker.bootstrap, [topic, Topics.dead_letter(topic)], partitions=2)
    stack.postgres.create_database(f"t_{name}")
    engine = make_engine(stack.postgres.url(f"t_{name}"), pool_size=2)
    async with engine.begin() as conn:
        await conn.run_sync(ProcessedEvent.metadata.create_all, [ProcessedEvent.__table__])
        # No key on purpose: an event applied twice would show as two rows.
        await conn.execute(text("CREATE TABLE applied (event_id text NOT NULL, amount int)"))
    try:
        yield Bench(stack=stack, topic=topic, engine=engine, group=f"test-{name}")
    finally:
        await engine.dispose()


async def _insert(session: AsyncSession, batch: list[EventEnvelope]) -> None:
    for event in batch:
        await session.execute(
            text("INSERT INTO applied (event_id, amount) VALUES (:id, :amount)"),
            {"id": str(event.event_id), "amount": event.payload["amount"]},
        )


def _event(amount: int, *, customer: str = "c1") -> EventEnvelope:
    return EventEnvelope(
        type="test.recorded", store_id="s1", customer_id=customer, payload={"amount": amount}
    )


async def test_a_lost_database_connection_is_retried_not_dead_lettered(stack: LocalStack) -> None:
    async with _bench(stack) as bench:
        connections_to_kill = 2  # the batch's attempt and the next one (one event at a time)

        async def kill_the_connection_at_first(
            session: AsyncSession, batch: list[EventEnvelope]
        ) -> None:
            nonlocal connections_to_kill
            if connections_to_kill:
                connections_to_kill -= 1
                # A real lost connection: the server ends this session's backend.
                await session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
            await _insert(session, batch)

        events = [_event(amount) for amount in (1, 2, 3)]
        await bench.produce(*events)
        async with bench.consuming(kill_the_connection_at_first):
            ids = sorted(str(e.event_id) for e in events)
            assert await eventually(lambda: _equal(bench.applied(), ids), timeout=60)

            async def all_counted() -> bool:
                return bench.metric("consumer_events_processed_total") == len(events)

            assert await eventually(all_counted)
        assert connections_to_kill == 0
        assert await bench.dead_letters() == []
        assert bench.metric("consumer_transient_retries_total") >= 1
        assert bench.metric("consumer_events_dead_lettered_total") == 0


async def test_an_event_breaking_a_rule_is_dead_lettered_and_replayed_once_fixed(
    stack: LocalStack,
) -> None:
    async with _bench(stack) as bench:
        rule = {"max_amount": 100}

        async def within_the_limit(session: AsyncSession, batch: list[EventEnvelope]) -> None:
            for event in batch:
                if event.payload["amount"] > rule["max_amount"]:
                    raise ValueError(f"amount {event.payload['amount']} over the limit")
            await _insert(session, batch)

        good, too_big, far_too_big = _event(50), _event(500), _event(700, customer="c2")
        await bench.produce(good, too_big, far_too_big)
        async with bench.consuming(within_the_limit):
            await eventually(bench.applied)
            dead = await eventually(lambda: _at_least(bench.dead_letters(), 2), timeout=60)
            assert await bench.applied() == [str(good.event_id)]
            assert sorted(EventEnvelope.from_bytes(v).event_id for v, _ in dead) == sorted(
                [too_big.event_id, far_too_big.event_id]
            )
            for _, headers in dead:
                assert "over the limit" in headers[ERROR_HEADER]
                assert headers[CONSUMER_HEADER] == bench.group
            assert bench.metric("consumer_events_dead_lettered_total") == 2

            listing = await _crm_dlq(bench, "list", bench.topic)
            assert "2 dead letters" in listing and "over the limit" in listing

            rule["max_amount"] = 1000  # the cause is fixed
            assert "replayed 2 " in await _crm_dlq(bench, "replay", bench.topic)
            ids = sorted(str(e.event_id) for e in (good, too_big, far_too_big))
            assert await eventually(lambda: _equal(bench.applied(), ids), timeout=60)

            # A second replay finds nothing new, and nothing was applied twice.
            assert "replayed 0 " in await _crm_dlq(bench, "replay", bench.topic)
            assert "0 dead letters" in await _crm_dlq(bench, "list", bench.topic)
            assert "2 dead letters" in await _crm_dlq(bench, "list", bench.topic, "--all")
            await asyncio.sleep(1)  # give a (wrong) second application time to land
            assert sorted(await bench.applied()) == ids


async def test_a_database_outage_while_scoring_works_through_a_backlog_loses_nothing() -> None:
    with throwaway_stack({"CRM_RATE_LIMIT": "1000000/minute"}) as stack:
        async with _admin_api(stack) as api:
            store = await create_store(api)
            product = await create_product(api)
            # The backlog: registrations and purchases that scoring has not seen yet.
            stack.stop_service("scoring")
            customers = [await create_customer(api, store_id=store["id"]) for _ in range(20)]
            expected: dict[str, int] = {}
            purchase_ids = []
            for i, customer in enumerate(customers):
                expected[customer["id"]] = 1 + i % 3
                for _ in range(expected[customer["id"]]):
                    purchase = await record_purchase(
                        api, customer_id=customer["id"], sku=product["sku"]
                    )
                    purchase_ids.append(purchase["id"].encode())
            await _read_topic(
                stack,
                Topics.PURCHASES,
                until=lambda vs: all(any(p in v for v, _ in vs) for p in purchase_ids),
            )

            # Scoring comes back and takes on the backlog while PostgreSQL is down for 20 s.
            stack.postgres.stop()
            stack.start_service("scoring")
            await asyncio.sleep(20)
            stack.postgres.start()
            stack.postgres.wait_ready()

            async def all_scored() -> bool:
                scores = await asyncio.gather(*(score_of(api, c) for c in expected))
                counts = [s["stats"]["purchase_count"] if s else 0 for s in scores]
                return counts == list(expected.values())

            assert await eventually(all_scored, timeout=90, interval=1)
            assert await _read_topic(stack, Topics.dead_letter(Topics.PURCHASES)) == []


@contextlib.asynccontextmanager
async def _admin_api(stack: LocalStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.url("gateway") + "/api/v1", timeout=30) as api:
        response = await api.post(
            "/auth/token", json={"username": "admin", "password": stack.admin_password}
        )
        response.raise_for_status()
        api.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
        yield api


async def _crm_dlq(bench: Bench, *args: str) -> str:
    """Run the console script as an operator would, against the test's broker."""
    process = await asyncio.create_subprocess_exec(
        CRM_DLQ,
        *args,
        env={"CRM_KAFKA_BOOTSTRAP": bench.stack.broker.bootstrap, "PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, output.decode()
    return output.decode()


async def _read_topic(
    stack: LocalStack, topic: str, *, until=None, timeout: float = 60
) -> list[tuple[bytes, dict[str, str]]]:
    """Everything on ``topic`` up to its current end (or until ``until`` holds)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.broker.bootstrap, enable_auto_commit=False)
    await consumer.start()
    values: list[tuple[bytes, dict[str, str]]] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
            if not tps:
                await consumer.topics()
                tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            end = await consumer.end_offsets(tps)
            values = []
            while [tp for tp in tps if await consumer.position(tp) < end[tp]]:
                batches = await consumer.getmany(timeout_ms=500)
                values.extend(
                    (r.value, {k: v.decode() for k, v in r.headers})
                    for records in batches.values()
                    for r in records
                )
            if until is None or until(values):
                return values
            assert loop.time() < deadline, f"only {len(values)} messages on {topic}"
            await asyncio.sleep(0.5)
    finally:
        await consumer.stop()


async def _at_least(values, count: int):
    found = await values
    return found if len(found) >= count else None


async def _equal(values, expected) -> bool:
    return sorted(await values) == expected


async def test_a_stopping_consumer_applies_what_the_broker_holds_commits_and_returns(
    stack: LocalStack,
) -> None:
    """On shutdown the consumer catches up before it returns, so a broker that stops next (the
    memory broker forgets everything) takes nothing unapplied with it."""
    async with _bench(stack) as bench:
        events = [_event(n, customer=f"c{n % 5}") for n in range(40)]
        await bench.produce(*events)
        stopping = asyncio.Event()
        stopping.set()  # the service is already stopping when the consumer gets its records
        consumer = EventConsumer(
            name=bench.group,
            topics=[bench.topic],
            bootstrap=stack.broker.bootstrap,
            sessionmaker=make_sessionmaker(bench.engine),
            handler=_insert,
            stopping=stopping,
        )
        await asyncio.wait_for(consumer.run(), timeout=60)  # returns by itself
        assert sorted(await bench.applied()) == sorted(str(e.event_id) for e in events)
        committed = AIOKafkaConsumer(bootstrap_servers=stack.broker.bootstrap, group_id=bench.group)
        await committed.start()
        try:
            offsets = [
                await committed.committed(TopicPartition(bench.topic, p)) or 0 for p in (0, 1)
            ]
        finally:
            await committed.stop()
        assert sum(offsets) == len(events)
