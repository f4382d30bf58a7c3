"""Runs a consumer group: batches from ``getmany``, one transaction per batch, offsets after.

The batch's effects and the processed ``event_id``s are written in one transaction, and the
offsets are committed to Kafka only after it: a crash replays the batch and the dedupe table
turns the replay into a no-op. A message that cannot be decoded or handled goes to
``<topic>.dlq`` with the error, and the group moves on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError
from sqlalchemy import Column, DateTime, PrimaryKeyConstraint, Text, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import Field, SQLModel

from crm_libs.events.envelope import EventEnvelope, Topics
from crm_libs.events.relay import make_producer

log = logging.getLogger(__name__)

BatchHandler = Callable[[AsyncSession, list[EventEnvelope]], Awaitable[None]]


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
    ) -> None:
        self.name = name
        self._topics = list(topics)
        self._bootstrap = bootstrap
        self._sessionmaker = sessionmaker
        self._handler = handler
        self._max_records = max_records

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
                while True:
                    batches = await consumer.getmany(timeout_ms=500, max_records=self._max_records)
                    if not batches:
                        continue
                    await self._process(batches, dlq)
                    await consumer.commit(
                        {tp: records[-1].offset + 1 for tp, records in batches.items()}
                    )
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

    async def _process(
        self, batches: dict[TopicPartition, list[ConsumerRecord]], dlq: AIOKafkaProducer
    ) -> None:
        decoded: list[tuple[ConsumerRecord, EventEnvelope]] = []
        for records in batches.values():
            for record in records:
                try:
                    decoded.append((record, EventEnvelope.from_bytes(record.value)))
                except (ValidationError, orjson.JSONDecodeError, TypeError) as exc:
                    await self._dead_letter(dlq, record, f"undecodable: {exc}")
        if not decoded:
            return
        try:
            await self._apply([event for _, event in decoded])
        except Exception:
            # Find the poison message: apply one at a time, dead-lettering those that fail.
            log.exception(
                "batch failed, retrying events one by one",
                extra={"fields": {"consumer": self.name}},
            )
            for record, event in decoded:
                try:
                    await self._apply([event])
                except Exception as exc:
                    await self._dead_letter(dlq, record, repr(exc))

    async def _apply(self, events: list[EventEnvelope]) -> None:
        async with self._sessionmaker() as session, session.begin():
            fresh = await claim_new_events(session, consumer=self.name, events=events)
            if fresh:
                await self._handler(session, fresh)

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
        headers = [("error", error[:1000].encode()), ("consumer", self.name.encode())]
        await dlq.send_and_wait(
            Topics.dead_letter(record.topic), value=record.value, key=record.key, headers=headers
        )
