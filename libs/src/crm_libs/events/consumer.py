"""Runs a consumer group: batches from ``getmany``, one transaction per batch, offsets after.

The batch's effects and the processed ``event_id``s are written in one transaction, and the
offsets are committed to Kafka only after it: a crash replays the batch and the dedupe table
turns the replay into a no-op.

Pipelined: while one batch's transaction runs in PostgreSQL, the next batch is fetched and
decoded here (on two cores, decoding and the database work at the same time). Batches are still
applied one after the other, and each batch's offsets are committed only once its own
transaction has committed.

Claims: a batch of distinct events is first claimed with one ``COPY`` into ``processed_event``
(no conflict check per row), and its handler may bulk-copy its own rows too
(:func:`first_delivery`). When an event turns out to be claimed already (a replay after a crash
or a rebalance, or a duplicate in the topic), that COPY fails on the primary key, the
transaction rolls back, and the batch is applied again with claims that skip what was applied
before (``INSERT ... ON CONFLICT DO NOTHING``).

Events the handler makes idempotent by a key of its own (``idempotent``: scoring's purchases,
whose facts are keyed by the purchase) are not claimed at all: the handler's own rows are their
claim, a second row per event in ``processed_event`` would only double the writes. They are
always handed to the handler, which must then skip what it stored before (its COPY fails on its
own key on a first delivery, as a claim would, and the batch is applied again).

A failure is sorted by :func:`~crm_libs.events.transient.is_transient`. A transient one (the
database restarting, a deadlock, a serialization failure, a timeout) commits nothing: the consumer
rewinds to the batch's first offsets, pauses those partitions for a capped exponential backoff and
tries the same events again, for as long as it takes. Any other failure is an event's own: the
batch is applied one event at a time and only the events that still fail (or cannot be decoded,
or are of a type their topic's contract does not name: :mod:`crm_libs.events.event_types`) go
to ``<topic>.dlq`` with the error, and the group moves on. ``crm-dlq replay <topic>``
(:mod:`crm_libs.events.dead_letters`) sends them back once the cause is fixed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_libs.events.batches import (
    Decoder,
    E,
    Fetched,
    decode_batch,
    decode_envelope,
)
from crm_libs.events.claims import (
    _FIRST_DELIVERY,
    _PREPARED,
    ProcessedEvent,
    claim_new_events,
    copy_claims,
    first_delivery,
    prepared,
)
from crm_libs.events.consumer_metrics import EVENTS_DEAD_LETTERED, EVENTS_PROCESSED
from crm_libs.events.consumer_offsets import report_lag, wait_to_retry
from crm_libs.events.dead_letters import dead_letter_headers
from crm_libs.events.envelope import EventEnvelope, Topics
from crm_libs.events.relay import make_producer
from crm_libs.events.transient import is_duplicate_key, is_transient

# Importable from here as before the consumer's parts had modules of their own.
__all__ = [
    "BatchHandler",
    "EventConsumer",
    "ProcessedEvent",
    "decode_envelope",
    "first_delivery",
    "prepared",
]

log = logging.getLogger(__name__)

BatchHandler = Callable[[AsyncSession, list[EventEnvelope]], Awaitable[None]]


@dataclass
class _Applying(Generic[E]):
    fetched: Fetched[E]
    task: asyncio.Task[Tally[TopicPartition]]


class EventConsumer(Generic[E]):
    def __init__(
        self,
        *,
        name: str,
        topics: Sequence[str],
        bootstrap: str,
        sessionmaker: async_sessionmaker[AsyncSession],
        handler: Callable[[AsyncSession, list[E]], Awaitable[None]],
        decode: Decoder[E] | None = None,
        prepare: Callable[[list[E]], Any] | None = None,
        idempotent: Callable[[E], bool] | None = None,
        max_records: int = 2000,
        max_partition_fetch_bytes: int = 1024 * 1024,
        retry_initial_seconds: float = 0.5,
        retry_max_seconds: float = 10.0,
        stopping: asyncio.Event | None = None,
    ) -> None:
        self.name = name
        self._topics = list(topics)
        self._bootstrap = bootstrap
        self._sessionmaker = sessionmaker
        self._handler = handler
        # Without a decoder of its own a consumer gets every record as an EventEnvelope.
        self._decode: Decoder[E] = decode or decode_envelope  # type: ignore[assignment]
        # The handler's work that needs no database, done on a batch as soon as it is decoded
        # (while the previous batch's transaction runs); see prepared().
        self._prepare = prepare
        # Events applied exactly once by the handler's own key: not claimed (see the module).
        self._idempotent = idempotent
        self._max_records = max_records
        self._max_partition_fetch_bytes = max_partition_fetch_bytes
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
                max_partition_fetch_bytes=self._max_partition_fetch_bytes,
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
        """Fetch and decode the next batch while the previous one is being applied.

        At most one batch is applied at a time and batches are applied in the order fetched.
        A batch's offsets are committed as soon as its transaction has committed; when it fails
        transiently, the batch fetched behind it is dropped and both are read again."""
        retry_in = self._retry_initial_seconds
        applying: _Applying[E] | None = None
        fetch: asyncio.Future[dict[TopicPartition, list[ConsumerRecord]]] | None = None
        try:
            while True:
                fetch = asyncio.ensure_future(
                    consumer.getmany(timeout_ms=500, max_records=self._max_records)
                )
                if applying is not None:
                    await asyncio.wait((fetch, applying.task), return_when=asyncio.FIRST_COMPLETED)
                    if _succeeded(applying.task) and not fetch.done():
                        # Quiet topic: commit now rather than when the fetch times out.
                        await self._committed(consumer, applying)
                        applying = None
                        retry_in = self._retry_initial_seconds
                batches = await fetch
                fetch = None
                fetched = (
                    await decode_batch(
                        batches,
                        decode=self._decode,
                        consumer=self.name,
                        idempotent=self._idempotent,
                        prepare=self._prepare,
                    )
                    if batches
                    else None
                )
                applied: _Applying[E] | None = None
                if applying is not None:
                    try:
                        await applying.task
                    except Exception as exc:
                        if not is_transient(exc):
                            raise
                        behind = [applying.fetched.batches] + ([batches] if batches else [])
                        applying = None
                        await wait_to_retry(
                            consumer, behind, name=self.name, error=exc, delay=retry_in
                        )
                        retry_in = min(retry_in * 2, self._retry_max_seconds)
                        await report_lag(consumer, name=self.name, reported=self._lag_reported)
                        continue
                    applied, applying = applying, None
                    retry_in = self._retry_initial_seconds
                if fetched is not None:
                    applying = _Applying(fetched, asyncio.create_task(self._process(fetched, dlq)))
                if applied is not None:
                    # After the next batch's transaction has started (the broker's round trip
                    # is not the database's wait), and before its own offsets can be.
                    await self._committed(consumer, applied)
                if fetched is None and self._stopping is not None and self._stopping.is_set():
                    log.info(
                        "consumer caught up, stopping", extra={"fields": {"consumer": self.name}}
                    )
                    return
        finally:
            for pending in (fetch, applying.task if applying is not None else None):
                if pending is not None and not pending.done():
                    pending.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await pending

    async def _committed(self, consumer: AIOKafkaConsumer, applying: _Applying[E]) -> None:
        """Commit an applied batch's offsets (of the partitions still ours) and count it."""
        dead_lettered = applying.task.result()
        batches = applying.fetched.batches
        # A partition a rebalance took meanwhile is the new owner's to commit: it reads those
        # events again and its claims skip them.
        assigned = consumer.assignment()
        offsets = {tp: records[-1].offset + 1 for tp, records in batches.items() if tp in assigned}
        if offsets:
            await consumer.commit(offsets)
        for tp, records in batches.items():
            labels = (self.name, tp.topic, str(tp.partition))
            EVENTS_PROCESSED.labels(*labels).inc(len(records) - dead_lettered[tp])
        await report_lag(consumer, name=self.name, reported=self._lag_reported)

    async def _process(self, fetched: Fetched[E], dlq: AIOKafkaProducer) -> Tally[TopicPartition]:
        """Apply the batch; dead-letter its poison events; return how many per partition.

        A transient failure anywhere propagates before anything is dead-lettered, so the retry
        sees the whole batch again (what was applied meanwhile is skipped by the dedupe table).
        """
        poison = list(fetched.poison)
        if fetched.events:
            try:
                await self._apply(fetched)
            except Exception as exc:
                if is_transient(exc):
                    raise
                # Find the poison message: apply one at a time, dead-lettering those that fail.
                log.exception(
                    "batch failed, retrying events one by one",
                    extra={"fields": {"consumer": self.name}},
                )
                for record, event in zip(fetched.records, fetched.events, strict=True):
                    try:
                        await self._apply_once([event])
                    except Exception as exc:
                        if is_transient(exc):
                            raise
                        poison.append((record, repr(exc)))
        dead_lettered: Tally[TopicPartition] = Tally()
        for record, error in poison:
            await self._dead_letter(dlq, record, error)
            dead_lettered[TopicPartition(record.topic, record.partition)] += 1
        return dead_lettered

    async def _apply(self, fetched: Fetched[E]) -> None:
        """Apply as a first delivery; again with conflict-checked claims if it was not one."""
        events, ids = fetched.events, fetched.ids
        if len(set(ids)) == len(ids):
            try:
                await self._apply_once(events, claims=fetched.claims, prepared=fetched.prepared)
                return
            except Exception as exc:
                if not is_duplicate_key(exc):
                    raise
                log.info(
                    "batch holds events applied before, applying it without them",
                    extra={"fields": {"consumer": self.name, "events": len(events)}},
                )
        await self._apply_once(events)

    async def _apply_once(
        self, events: list[E], *, claims: list[tuple[str, str]] | None = None, prepared: Any = None
    ) -> None:
        """One transaction: claimed with one COPY of ``claims`` (a first delivery, every event
        new) or with conflict checks, then the handler on the events not applied before."""
        async with self._sessionmaker() as session, session.begin():
            if claims is not None:
                session.info[_FIRST_DELIVERY] = True
                session.info[_PREPARED] = prepared
                await copy_claims(session, claims=claims)
                fresh = events
            else:
                fresh = await claim_new_events(
                    session, consumer=self.name, events=events, idempotent=self._idempotent
                )
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
        await dlq.send_and_wait(
            Topics.dead_letter(record.topic),
            value=record.value,
            key=record.key,
            headers=dead_letter_headers(error=error, consumer=self.name),
        )
        EVENTS_DEAD_LETTERED.labels(self.name, record.topic, str(record.partition)).inc()


def _succeeded(task: asyncio.Task[Any]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is None
