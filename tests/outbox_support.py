"""Helpers of the outbox relay tests: a database, a topic and relays of their own."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from crm_devstack.broker import create_topics
from crm_libs.events.relay import OutboxRelay

_INSERT_SQL = text(
    """
    INSERT INTO outbox_event (event_id, topic, key, envelope)
    VALUES (:event_id, :topic, :key, CAST(:envelope AS jsonb))
    RETURNING id
    """
)


async def new_topic(bootstrap: str, *, partitions: int = 4) -> str:
    """A topic no service consumes, so the relay's test events disturb nothing."""
    topic = f"crm.test.outbox.{uuid.uuid4().hex[:10]}"
    await create_topics(bootstrap, [topic], partitions=partitions)
    return topic


async def insert_events(
    engine: AsyncEngine, rows: Sequence[tuple[str, str, dict[str, Any]]]
) -> list[int]:
    """Stage ``(topic, key, envelope)`` rows as the services do; returns their outbox ids."""
    ids = []
    async with engine.begin() as conn:
        for topic, key, envelope in rows:
            ids.append(
                (
                    await conn.execute(
                        _INSERT_SQL,
                        {
                            "event_id": str(uuid.uuid4()),
                            "topic": topic,
                            "key": key,
                            "envelope": orjson.dumps(envelope).decode(),
                        },
                    )
                ).scalar_one()
            )
    return ids


@asynccontextmanager
async def running_relays(
    sessionmaker: async_sessionmaker[AsyncSession],
    database_url: str,
    bootstrap: str,
    *,
    count: int = 1,
    **options: Any,
) -> AsyncIterator[list[OutboxRelay]]:
    relays = [
        OutboxRelay(
            sessionmaker=sessionmaker, database_url=database_url, bootstrap=bootstrap, **options
        )
        for _ in range(count)
    ]
    tasks = [asyncio.create_task(relay.run()) for relay in relays]
    try:
        yield relays
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def read_topic(bootstrap: str, topic: str, *, expected: int, timeout: float = 60) -> list:
    """Every record of ``topic`` from the start, once at least ``expected`` arrived."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(records) < expected and loop.time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for batch in batches.values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


def applied_in_order(records: list, key: str) -> list[int]:
    """The ``seq`` of ``key``'s events as a consumer applies them: each the first time it is seen,
    in partition order (all of a key's records on one partition)."""
    mine = [r for r in records if r.key == key.encode()]
    assert len({r.partition for r in mine}) == 1, f"{key} not on exactly one partition"
    return list(dict.fromkeys(orjson.loads(r.value)["seq"] for r in mine))
