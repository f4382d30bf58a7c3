"""Runs a consumer group: batches from ``getmany``, one transaction per batch, offsets after.

The batch's effects and the processed ``event_id``s are written in one transaction, and the
offsets are committed to Kafka only after it: a crash replays the batch and the dedupe table
turns the replay into a no-op.

A failure is sorted by :func:`~crm_libs.events.transient.is_transient`. A transient one (the
database restarting, a deadlock, a serialization failure, a timeout) commits nothing: the consumer
rewinds to the batch's first offsets, pauses those partitions for a capped exponential backoff and
tries the same events again, for as long as it takes. Any other failure is an event's own: the
batch is applied one event at a time and only the events that still fail (or cannot be decoded)
go to ``<topic>.dlq`` with the error, and the group moves on. ``crm-dlq replay <topic>``
(:mod:`crm_libs.events.dead_letters`) sends them back once the cause is fixed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import Counter, Gauge
from pydantic import ValidationError
from sqlalchemy import Column, DateTime, PrimaryKeyConstraint, Text, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import Field, SQLModel

from crm_libs.events.dead_letters import dead_letter_headers
from crm_libs.events.envelope import EventEnvelope, Topics
from crm_libs.events.relay import make_producer
from crm_libs.events.transient import is_transient

log = logging.getLogger(__name__)

BatchHandler = Callable[[AsyncSession, list[EventEnvelope]], Awaitable[None]]

# Module-level, on the default registry that every service's /metrics serves.
_LABELS = ["consumer", "topic", "partition"]
EVENTS_PROCESSED = Counter(
    "consumer_events_processed",
    "Events applied (or recognised as already applied) and committed.",
    _LABELS,
)
EVENTS_DEAD_LETTERED = Counter(
    "consumer_events_dead_lettered",
    "Events sent to <topic>.dlq because they fail validation or a domain rule.",
    _LABELS,
)
TRANSIENT_RETRIES = Counter(
    "consumer_transient_retries",
    "Batches rewound and retried after a transient failure (database or broker away).",
    _LABELS,
)
CONSUMER_LAG = Gauge(
    "consumer_lag",
    "Records on the partition not consumed yet (highwater - position), after each batch.",
    _LABELS,
    # A partition moves between workers on a rebalance: the latest owner's figure counts.
    multiprocess_mode="livemostrecent",
)


class ProcessedEvent(SQLModel, table=True):
    """Which events a consumer group has already applied (its effect is exactly-once)."""

    __tablename__ = "processed_event"
    __table_args__ = (PrimaryKeyConstraint("consumer", "event_id"),)

    consumer: str = Field(sa_column=Column(Text, nullable=False))
    event_id: str = Field(sa_column=Column(Text, nullable=False))
    processed_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()"))
    )


_CLAIM_NEW_SQL = text(
    """
    INSERT INTO processed_event (consumer, event_id)
    SELECT :consumer, unnest(CAST(:ids AS text[]))
    ON CONFLICT DO NOTHING
    RETURNING event_id
    """
)


async def claim_new_events(
    session: AsyncSession, *, consumer: str, events: Sequence[EventEnvelope]
) -> list[EventEnvelope]:
    """Record the events as processed and return only those not seen before, in order."""
    if not events:
        return []
    ids = [str(e.event_id) for e in events]
    fresh = set(
        (await session.execute(_CLAIM_NEW_SQL, {"consumer": consumer, "ids": ids})).scalars()
    )
    seen: set[str] = set()
    out = []
    for event in events:
        event_id = str(event.event_id)
        if event_id in fresh and event_id not in seen:
            seen.add(event_id)
            out.append(event)
    return out


class EventConsumer:
    def __init__(
        self,
        *,
        name: str,
        topics: Sequence[str],
        bootstrap: str,
        sessionmaker: async_sessionmaker[AsyncSession],
        handler: BatchHandler,
        max_records: int = 2000,
        retry_initial_seconds: float = 0.5,
        retry_max_seconds: float = 10.0,
        stopping: asyncio.Event | None = None,
    ) -> None:
        self.name = name
        self._topics = list(topics)
        self._bootstrap = bootstrap
        self._sessionmaker = sessionmaker
        self._handler = handler
        self._max_records = max_records
        self._retry_initial_seconds = retry_initial_seconds
        self._retry_max_seconds = retry_max_seconds
        self._lag_reported: set[TopicPartition] = set()
        # Set when the service stops: finish what the broker still holds, commit, and return.
        self._stopping = stopping

    async def run(self) -> None:
        """Consume until cancelled, reconnecting with backoff while the broker is away."""
        backoff = 0.5
        while True:
            consumer = AIOKafkaConsumer(
                *self._topics,
                bootstrap_servers=self._bootstrap,
                group_id=self.name,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=self._max_records,
                fetch_max_bytes=16 * 1024 * 1024,
            )
            dlq = make_producer(self._bootstrap)
            try:
                await consumer.start()
                await dlq.start()
                log.info("consumer started", extra={"fields": {"consumer": self.name}})
                backoff = 0.5
                await self._consume(consumer, dlq)
                return
            except asyncio.CancelledError:
                raise
            except (KafkaError, OSError) as exc:
                log.warning(
                    "consumer lost the broker, reconnecting",
                    extra={
                        "fields": {"consumer": self.name, "error": repr(exc), "retry_in_s": backoff}
                    },
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(consumer.stop(), timeout=5)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(dlq.stop(), timeout=5)

    async def _consume(self, consumer: AIOKafkaConsumer, dlq: AIOKafkaProducer) -> None:
        retry_in = self._retry_initial_seconds
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=self._max_records)
            if not batches:
                if self._stopping is not None and self._stopping.is_set():
                    log.info(
                        "consumer caught up, stopping", extra={"fields": {"consumer": self.name}}
                    )
                    return
                continue
            try:
                dead_lettered = await self._process(batches, dlq)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                await self._wait_to_retry(consumer, batches, error=exc, delay=retry_in)
                retry_in = min(retry_in * 2, self._retry_max_seconds)
                await self._report_lag(consumer)
                continue
            retry_in = self._retry_initial_seconds
            await consumer.commit({tp: records[-1].offset + 1 for tp, records in batches.items()})
            for tp, records in batches.items():
                labels = (self.name, tp.topic, str(tp.partition))
                EVENTS_PROCESSED.labels(*labels).inc(len(records) - dead_lettered[tp])
            await self._report_lag(consumer)

    async def _process(
        self, batches: dict[TopicPartition, list[ConsumerRecord]], dlq: AIOKafkaProducer
    ) -> Tally[TopicPartition]:
        """Apply the batch; dead-letter its poison events; return how many per partition.

        A transient failure anywhere propagates before anything is dead-lettered, so the retry
        sees the whole batch again (what was applied meanwhile is skipped by the dedupe table).
        """
        decoded: list[tuple[ConsumerRecord, EventEnvelope]] = []
        poison: list[tuple[ConsumerRecord, str]] = []
        for records in batches.values():
            for record in records:
                try:
                    decoded.append((record, EventEnvelope.from_bytes(record.value)))
                except (ValidationError, orjson.JSONDecodeError, TypeError) as exc:
                    poison.append((record, f"undecodable: {exc}"))
        if decoded:
            try:
                await self._apply([event for _, event in decoded])
            except Exception as exc:
                if is_transient(exc):
                    raise
                # Find the poison message: apply one at a time, dead-lettering those that fail.
                log.exception(
                    "batch failed, retrying events one by one",
                    extra={"fields": {"consumer": self.name}},
                )
                for record, event in decoded:
                    try:
                        await self._apply([event])
                    except Exception as exc:
                        if is_transient(exc):
                            raise
                        poison.append((record, repr(exc)))
        dead_lettered: Tally[TopicPartition] = Tally()
        for record, error in poison:
            await self._dead_letter(dlq, record, error)
            dead_lettered[TopicPartition(record.topic, record.partition)] += 1
        return dead_lettered

    async def _apply(self, events: list[EventEnvelope]) -> None:
        async with self._sessionmaker() as session, session.begin():
            fresh = await claim_new_events(session, consumer=self.name, events=events)
            if fresh:
                await self._handler(session, fresh)

    async def _wait_to_retry(
        self,
        consumer: AIOKafkaConsumer,
        batches: dict[TopicPartition, list[ConsumerRecord]],
        *,
        error: Exception,
        delay: float,
    ) -> None:
        """Rewind the batch's partitions to its first offsets and pause them for ``delay``.

        Nothing is committed, so a crash or a rebalance meanwhile replays the same events. The
        member stays in the group: aiokafka heartbeats in the background, and ``getmany`` is
        called again after at most the capped delay, well inside ``max_poll_interval_ms``.
        """
        assigned = consumer.assignment()
        partitions = [tp for tp in batches if tp in assigned]  # a rebalance may have taken some
        for tp in partitions:
            consumer.seek(tp, batches[tp][0].offset)
            TRANSIENT_RETRIES.labels(self.name, tp.topic, str(tp.partition)).inc()
        log.warning(
            "transient failure, retrying the batch",
            extra={
                "fields": {
                    "consumer": self.name,
                    "error": repr(error),
                    "retry_in_s": delay,
                    "events": sum(len(records) for records in batches.values()),
                    "partitions": len(partitions),
                }
            },
        )
        consumer.pause(*partitions)
        try:
            await asyncio.sleep(delay)
        finally:
            still_assigned = consumer.assignment()
            consumer.resume(*(tp for tp in partitions if tp in still_assigned))

    async def _report_lag(self, consumer: AIOKafkaConsumer) -> None:
        assigned = consumer.assignment()
        for tp in assigned:
            highwater = consumer.highwater(tp)
            if highwater is None:  # nothing fetched from it yet
                continue
            lag = max(highwater - await consumer.position(tp), 0)
            CONSUMER_LAG.labels(self.name, tp.topic, str(tp.partition)).set(lag)
            self._lag_reported.add(tp)
        # A partition handed to another member is that member's to report.
        for tp in self._lag_reported - assigned:
            with contextlib.suppress(KeyError):
                CONSUMER_LAG.remove(self.name, tp.topic, str(tp.partition))
        self._lag_reported &= assigned

    async def _dead_letter(self, dlq: AIOKafkaProducer, record: ConsumerRecord, error: str) -> None:
        log.error(
            "event dead-lettered",
            extra={
                "fields": {
                    "consumer": self.name,
                    "topic": record.topic,
                    "offset": record.offset,
                    "error": error,
                }
            },
        )
        await dlq.send_and_wait(
            Topics.dead_letter(record.topic),
            value=record.value,
            key=record.key,
            headers=dead_letter_headers(error=error, consumer=self.name),
        )
        EVENTS_DEAD_LETTERED.labels(self.name, record.topic, str(record.partition)).inc()
