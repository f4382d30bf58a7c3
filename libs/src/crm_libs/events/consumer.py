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
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import Counter, Gauge
from sqlalchemy import Column, DateTime, PrimaryKeyConstraint, Text, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import Field, SQLModel

from crm_libs.events.dead_letters import dead_letter_headers
from crm_libs.events.driver import driver_connection
from crm_libs.events.envelope import EventEnvelope, Topics
from crm_libs.events.event_types import UnknownEventType, check_event_type
from crm_libs.events.relay import make_producer
from crm_libs.events.transient import is_duplicate_key, is_transient

log = logging.getLogger(__name__)


class Claimable(Protocol):
    """What a consumer needs of a decoded event: its id (a UUID, or its text)."""

    @property
    def event_id(self) -> object: ...


E = TypeVar("E", bound=Claimable)

BatchHandler = Callable[[AsyncSession, list[EventEnvelope]], Awaitable[None]]
# Turns a record's value, read from the topic named, into an event, raising ValueError or
# TypeError (pydantic's and orjson's errors are ValueErrors) for one that is not a valid event
# of that topic (crm_libs.events.event_types.UnknownEventType for a type its contract does not
# name): it is dead-lettered.
Decoder = Callable[[bytes, str], E]
UNDECODABLE = (ValueError, TypeError)


def decode_envelope(raw: bytes, topic: str) -> EventEnvelope:
    """The default decoder: the envelope, of a type ``topic``'s contract names."""
    envelope = EventEnvelope.from_bytes(raw)
    check_event_type(topic, envelope.type)
    return envelope


# Records decoded between two yields to the event loop: the batch in the database meanwhile
# gets its next statement sent without waiting for the whole next batch to be decoded.
_DECODE_SLICE = 250

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
_CLAIM_COLUMNS = ("consumer", "event_id")

# session.info keys: set while a batch of events new to the group is applied (first_delivery),
# with what the consumer's prepare() made of it (prepared).
_FIRST_DELIVERY = "crm.events.first_delivery"
_PREPARED = "crm.events.prepared"


def first_delivery(session: AsyncSession) -> bool:
    """True while the consumer applies a batch whose events it claimed with one COPY: all of
    them are new to the group, except the ``idempotent`` ones, which were not claimed. The
    handler may then bulk-copy rows keyed by its events without a conflict check (for the
    idempotent ones it must: that COPY is their claim); a duplicate key makes the consumer apply
    the batch again, with this False (and the handler's inserts must then skip what exists)."""
    return bool(session.info.get(_FIRST_DELIVERY))


def prepared(session: AsyncSession) -> Any:
    """What the consumer's ``prepare`` made of the batch being applied, when it is applied as
    decoded (a first delivery, every event in it); None otherwise: the handler then works from
    the events it is given, which may be fewer."""
    return session.info.get(_PREPARED)


async def claim_new_events(
    session: AsyncSession,
    *,
    consumer: str,
    events: Sequence[Claimable],
    idempotent: Callable[[Any], bool] | None = None,
) -> list[Any]:
    """Record the events as processed and return only those not seen before, in order.

    Events for which ``idempotent`` is true are neither recorded nor checked: all of them come
    back (the handler skips what it applied before)."""
    if not events:
        return []
    ids = [str(e.event_id) for e in events if idempotent is None or not idempotent(e)]
    fresh: set[str] = set()
    if ids:
        fresh = set(
            (await session.execute(_CLAIM_NEW_SQL, {"consumer": consumer, "ids": ids})).scalars()
        )
    seen: set[str] = set()
    out = []
    for event in events:
        if idempotent is not None and idempotent(event):
            out.append(event)
            continue
        event_id = str(event.event_id)
        if event_id in fresh and event_id not in seen:
            seen.add(event_id)
            out.append(event)
    return out


def claim_rows(*, consumer: str, event_ids: Sequence[str]) -> list[tuple[str, str]]:
    """The rows :func:`copy_claims` copies, made ahead of the transaction."""
    return [(consumer, event_id) for event_id in event_ids]


async def copy_claims(session: AsyncSession, *, claims: list[tuple[str, str]]) -> None:
    """Claim events known to be distinct (:func:`claim_rows`) with one COPY; fails on the
    primary key if any of them was claimed before.

    A binary COPY: asyncpg encodes the values, the server only stores them (CSV made ahead
    moved the work into the server's parsing, the busier side here)."""
    if not claims:
        return
    driver = await driver_connection(session)
    await driver.copy_records_to_table(
        ProcessedEvent.__tablename__, records=claims, columns=_CLAIM_COLUMNS
    )


@dataclass
class _Fetched(Generic[E]):
    """One ``getmany``: its records by partition, decoded, and those that could not be.

    ``records[i]`` holds ``events[i]``: two lists rather than a pair per event, which thousands
    of times per batch would only give the garbage collector more to scan."""

    batches: dict[TopicPartition, list[ConsumerRecord]]
    records: list[ConsumerRecord] = field(default_factory=list)
    events: list[E] = field(default_factory=list)
    poison: list[tuple[ConsumerRecord, str]] = field(default_factory=list)
    # Made before the batch's turn, while the previous batch's transaction runs.
    ids: list[str] = field(default_factory=list)
    claims: list[tuple[str, str]] = field(default_factory=list)
    prepared: Any = None


@dataclass
class _Applying(Generic[E]):
    fetched: _Fetched[E]
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
                fetched = await self._decoded(batches) if batches else None
                applied: _Applying[E] | None = None
                if applying is not None:
                    try:
                        await applying.task
                    except Exception as exc:
                        if not is_transient(exc):
                            raise
                        behind = [applying.fetched.batches] + ([batches] if batches else [])
                        applying = None
                        await self._wait_to_retry(consumer, behind, error=exc, delay=retry_in)
                        retry_in = min(retry_in * 2, self._retry_max_seconds)
                        await self._report_lag(consumer)
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
        await self._report_lag(consumer)

    async def _decoded(self, batches: dict[TopicPartition, list[ConsumerRecord]]) -> _Fetched[E]:
        """Decode every record; those that are not valid events are set aside as poison."""
        fetched: _Fetched[E] = _Fetched(batches)
        decode = self._decode
        done = 0
        for records in batches.values():
            for record in records:
                try:
                    fetched.events.append(decode(record.value, record.topic))
                    fetched.records.append(record)
                except UnknownEventType as exc:
                    fetched.poison.append((record, str(exc)))
                except UNDECODABLE as exc:
                    fetched.poison.append((record, f"undecodable: {exc}"))
                done += 1
                if done % _DECODE_SLICE == 0:
                    await asyncio.sleep(0)
        fetched.ids = [str(e.event_id) for e in fetched.events]
        idempotent = self._idempotent
        claimed = (
            fetched.ids
            if idempotent is None
            else [i for i, e in zip(fetched.ids, fetched.events, strict=True) if not idempotent(e)]
        )
        fetched.claims = claim_rows(consumer=self.name, event_ids=claimed)
        if self._prepare is not None and fetched.events:
            await asyncio.sleep(0)
            fetched.prepared = self._prepare(fetched.events)
        return fetched

    async def _process(self, fetched: _Fetched[E], dlq: AIOKafkaProducer) -> Tally[TopicPartition]:
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

    async def _apply(self, fetched: _Fetched[E]) -> None:
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

    async def _wait_to_retry(
        self,
        consumer: AIOKafkaConsumer,
        behind: Sequence[dict[TopicPartition, list[ConsumerRecord]]],
        *,
        error: Exception,
        delay: float,
    ) -> None:
        """Rewind to the first offsets of the failed batch (and of the one fetched behind it)
        and pause those partitions for ``delay``.

        Nothing is committed, so a crash or a rebalance meanwhile replays the same events. The
        member stays in the group: aiokafka heartbeats in the background, and ``getmany`` is
        called again after at most the capped delay, well inside ``max_poll_interval_ms``.
        """
        first_offsets: dict[TopicPartition, int] = {}
        for batches in behind:  # the failed batch first: its offsets are the earlier ones
            for tp, records in batches.items():
                first_offsets.setdefault(tp, records[0].offset)
        assigned = consumer.assignment()
        partitions = [tp for tp in first_offsets if tp in assigned]  # a rebalance may take some
        for tp in partitions:
            consumer.seek(tp, first_offsets[tp])
            TRANSIENT_RETRIES.labels(self.name, tp.topic, str(tp.partition)).inc()
        log.warning(
            "transient failure, retrying the batch",
            extra={
                "fields": {
                    "consumer": self.name,
                    "error": repr(error),
                    "retry_in_s": delay,
                    "events": sum(len(records) for records in behind[0].values()),
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


def _succeeded(task: asyncio.Task[Any]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is None
