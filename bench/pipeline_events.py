"""The pipeline benchmark's broker side: the purchase events produced, the bare consumer it
measures scoring against, the dead letters, and the wait for scoring to catch up."""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from proc_cpu import cpu_seconds, postmaster_pid, tree_cpu_seconds
from support import log

from crm_devstack.stack import TOPIC_PARTITIONS, LocalStack
from crm_libs.events.envelope import EventEnvelope, Topics


async def produce(bootstrap: str, events: list[EventEnvelope]) -> float:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=False,
        linger_ms=5,
        max_batch_size=256 * 1024,
        request_timeout_ms=30_000,
    )
    started = time.perf_counter()
    await producer.start()
    try:
        futures = [
            await producer.send(Topics.PURCHASES, value=e.to_bytes(), key=e.key) for e in events
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def baseline_consume(bootstrap: str, expected: int) -> tuple[float, float]:
    """A bare consumer, fresh group, same fetch settings as EventConsumer; decodes every record.

    Returns (seconds until all ``expected`` were decoded, seconds until records first arrived)."""
    consumer = AIOKafkaConsumer(
        Topics.PURCHASES,
        bootstrap_servers=bootstrap,
        group_id=f"bench-baseline-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=2000,
        fetch_max_bytes=16 * 1024 * 1024,
    )
    started = time.perf_counter()
    first = None
    seen = 0
    await consumer.start()
    try:
        while seen < expected:
            batches = await consumer.getmany(timeout_ms=500, max_records=2000)
            if batches and first is None:
                first = time.perf_counter() - started
            for records in batches.values():
                for record in records:
                    EventEnvelope.from_bytes(record.value)
                    seen += 1
        elapsed = time.perf_counter() - started
    finally:
        await consumer.stop()
    return elapsed, first or elapsed


async def dead_lettered(bootstrap: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        topic = Topics.dead_letter(Topics.PURCHASES)
        partitions = [TopicPartition(topic, p) for p in range(TOPIC_PARTITIONS)]
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        return sum(ends[tp] - starts[tp] for tp in partitions)
    finally:
        await consumer.stop()


class Progress:
    def __init__(self) -> None:
        self.first_applied: float | None = None
        self.applied_at_first = 0  # already applied when the first progress was seen
        self.cpu_at_first = 0.0  # the scoring process's CPU seconds at that moment
        self.cpu_at_done = 0.0
        self.pg_cpu_at_first = 0.0  # PostgreSQL's (all backends), likewise
        self.pg_cpu_at_done = 0.0
        self.done: float | None = None
        self.applied = 0


async def committed_events(offsets: AIOKafkaConsumer) -> int:
    """Purchase events the group of ``offsets`` applied and committed (offsets start at 0).

    Asked of the broker rather than counted in ``processed_event``: a count over a table of tens
    of thousands of rows ten times a second would be PostgreSQL work in the measured window.
    The consumer commits a batch's offsets right after its transaction, so this is as fresh."""
    partitions = [TopicPartition(Topics.PURCHASES, p) for p in range(TOPIC_PARTITIONS)]
    committed = await asyncio.gather(*(offsets.committed(tp) for tp in partitions))
    return sum(offset or 0 for offset in committed)


async def wait_caught_up(
    stack: LocalStack,
    conn: asyncpg.Connection,
    expected: int,
    started: float,
    args: argparse.Namespace,
    keys: tuple[str, ...] = ("scoring",),
    group: str = "scoring",
) -> Progress:
    """Poll until consumer group ``group`` (scoring instances ``keys``) committed ``expected``
    events, and check that the purchase facts and claims hold them all."""
    progress = Progress()
    last_change = time.perf_counter()
    last_report = last_change
    processes = [stack.processes[key] for key in keys]
    pg = postmaster_pid(stack)

    def cpu() -> float:
        return sum(cpu_seconds(p.pid) for p in processes)

    def pg_cpu() -> float:
        return tree_cpu_seconds(pg) if pg else 0.0

    # Never subscribes: it only reads the group's committed offsets.
    offsets = AIOKafkaConsumer(
        bootstrap_servers=stack.broker.bootstrap, group_id=group, enable_auto_commit=False
    )
    await offsets.start()
    try:
        while True:
            count = await committed_events(offsets)
            now = time.perf_counter()
            if count and progress.first_applied is None:
                progress.first_applied = now - started
                progress.applied_at_first = count
                progress.cpu_at_first = cpu()
                progress.pg_cpu_at_first = pg_cpu()
            if count != progress.applied:
                progress.applied = count
                last_change = now
            if count >= expected:
                progress.done = now - started
                progress.cpu_at_done = cpu()
                progress.pg_cpu_at_done = pg_cpu()
                # A purchase is claimed by its fact (no processed_event row); anything else
                # by its claim.
                stored = await conn.fetchval(
                    "SELECT (SELECT count(*) FROM processed_event)"
                    " + (SELECT count(*) FROM purchase_fact)"
                )
                if stored < expected:
                    log(f"offsets say {count} applied, claims and purchase facts: {stored}")
                    progress.done = None
                return progress
            if dead := [p for p in processes if p.poll() is not None]:
                log(f"scoring exited with {dead[0].returncode} after {count} events")
                return progress
            if now - started > args.timeout or (
                progress.first_applied is not None and now - last_change > args.stall
            ):
                log(f"scoring stalled or too slow: {count} of {expected} applied")
                return progress
            if now - last_report >= 10:
                last_report = now
                log(f"  … scoring applied {count:,} of {expected:,} after {now - started:.0f} s")
            await asyncio.sleep(0.1)
    finally:
        await offsets.stop()
