"""Publishes committed outbox rows to Kafka and marks them sent.

Several replicas may run it, but one at a time publishes: each batch is claimed under a
transaction-scoped advisory lock, so a customer's later event can never overtake an earlier one
that another replica is still sending; if the publishing replica dies, its lock goes with its
transaction and any other takes over. It sleeps on ``LISTEN`` and wakes on the NOTIFY that the
outbox trigger sends, with a slow poll as a safety net.

While the broker is away it backs off and retries; nothing is marked sent until Kafka acked it,
and such outages do not count against any row. A row that fails on its own (unknown topic, too
large) waits for a retry with backoff, holding back only its own customer's later events, and is
parked after ``max_attempts``; the rest keep flowing. To send parked rows again once the cause
is fixed::

    UPDATE outbox_event SET parked_at = NULL, attempts = 0, retry_at = NULL WHERE id = ...;

(or :func:`crm_libs.events.outbox.unpark`). Published rows are kept for the retention period and
sent again when the broker turns out to have lost its data (:mod:`crm_libs.events.broker_epoch`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter as Tally
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from prometheus_client import Counter, Gauge
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_libs.events.broker_epoch import check_broker_epoch
from crm_libs.events.driver import driver_connection
from crm_libs.events.envelope import Topics
from crm_libs.events.outbox import NOTIFY_CHANNEL, purge_published
from crm_libs.events.partitions import partition_of
from crm_libs.notify import listen_forever

log = logging.getLogger(__name__)

PUBLISHED = Counter("crm_outbox_published", "Outbox events acknowledged by the broker", ["topic"])
PARKED = Counter("crm_outbox_parked", "Outbox events parked after repeated failures", ["topic"])
REPUBLISHED = Counter(
    "crm_outbox_republished", "Retained outbox events sent again after the broker lost its data"
)
# Every worker's relay counts the same table: under several workers the latest count is the answer.
BACKLOG = Gauge(
    "crm_outbox_backlog",
    "Outbox events waiting to be published (not parked)",
    multiprocess_mode="livemostrecent",
)
PARKED_ROWS = Gauge(
    "crm_outbox_parked_rows",
    "Outbox events parked and waiting for an operator",
    multiprocess_mode="livemostrecent",
)

# Only the replica holding it publishes (per database: advisory locks are database-scoped).
_LEADER_SQL = text("SELECT pg_try_advisory_xact_lock(hashtextextended('crm.outbox.relay', 0))")

# In id order, skipping rows that wait for a retry and every later row of the same customer.
# The envelope comes as its JSON text, sent as it is: no object built and serialised again.
# Both on the asyncpg connection itself: two thousand rows as SQLAlchemy rows cost more Python
# than sending them. No row locks: the claim, the sends' outcomes and the epoch check run only in
# the leader's transaction (``_LEADER_SQL``), and nothing else writes an unpublished, unparked
# row; locking each claimed row wrote every row once more (and its page to the WAL after a
# checkpoint) before the mark wrote it again, a third of what publishing cost PostgreSQL.
_CLAIM_SQL = """
    WITH waiting AS MATERIALIZED (
        SELECT key, min(id) AS first_id FROM outbox_event
        WHERE published_at IS NULL AND parked_at IS NULL AND retry_at IS NOT NULL
          AND retry_at > now()
        GROUP BY key
    )
    SELECT o.id, o.event_id, o.topic, o.key, CAST(o.envelope AS text) AS envelope
    FROM outbox_event o
    WHERE o.published_at IS NULL AND o.parked_at IS NULL
      AND (o.retry_at IS NULL OR o.retry_at <= now())
      AND NOT EXISTS (SELECT 1 FROM waiting w WHERE w.key = o.key AND w.first_id < o.id)
    ORDER BY o.id
    LIMIT $1
"""
_MARK_SENT_SQL = """
    UPDATE outbox_event SET published_at = now(), attempts = attempts + 1, retry_at = NULL
    WHERE id = ANY($1::bigint[])
"""


class _Row(NamedTuple):
    """A claimed outbox row."""

    id: int
    event_id: str
    topic: str
    key: str
    envelope: str  # the JSON text, sent as it is


_RECORD_FAILURE_SQL = text(
    """
    UPDATE outbox_event SET
        attempts = attempts + 1,
        last_error = :error,
        parked_at = CASE WHEN attempts + 1 >= :max_attempts THEN now() END,
        retry_at = CASE WHEN attempts + 1 < :max_attempts
            THEN now() + make_interval(secs => least(:base * power(2, attempts), :cap)) END
    WHERE id = :id
    RETURNING attempts, parked_at IS NOT NULL AS parked
    """
)
_COUNTS_SQL = text(
    """
    SELECT
        (SELECT count(*) FROM outbox_event WHERE published_at IS NULL AND parked_at IS NULL),
        (SELECT count(*) FROM outbox_event WHERE parked_at IS NOT NULL)
    """
)


# Rows put in record batches between two yields to the event loop: a consumer in the same
# process then sends its next statement without waiting for the whole claim to be batched.
_YIELD_EVERY = 250
# Records larger than this go out on their own (a quarter of the producer's batch size): one
# that is too large for any request then fails alone, with aiokafka's own error.
_ALONE_ABOVE_BYTES = 64 * 1024


def make_producer(bootstrap: str) -> AIOKafkaProducer:
    """A plain acks=all producer: the embedded broker has no idempotent producer, and consumers
    deduplicate by event_id anyway."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=False,
        linger_ms=5,
        request_timeout_ms=10_000,
        max_batch_size=256 * 1024,
    )


def _broker_trouble(exc: BaseException) -> bool:
    """An error of the broker or the way to it (retry everything later), not of one row."""
    if isinstance(exc, KafkaError):
        return bool(exc.retriable)
    return isinstance(exc, (TimeoutError, OSError))


@dataclass
class _Batch:
    sent: list[Any] = field(default_factory=list)
    failed: dict[int, tuple[Any, str]] = field(default_factory=dict)
    trouble: BaseException | None = None


class OutboxRelay:
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        database_url: str,
        bootstrap: str,
        # Rows per claim: a backlog of thousands (a re-rank's score.changed) goes out in a few
        # round trips and broker metadata checks rather than one per few hundred rows.
        batch_size: int = 2000,
        poll_seconds: float = 5.0,
        max_backoff_seconds: float = 10.0,
        max_attempts: int = 10,
        retry_base_seconds: float = 0.5,
        retry_cap_seconds: float = 60.0,
        retention_seconds: float = 7 * 86400,
        purge_every_seconds: float = 600.0,
        epoch_check_every_seconds: float = 30.0,
        stopping: asyncio.Event | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._database_url = database_url
        self._bootstrap = bootstrap
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._max_backoff = max_backoff_seconds
        self._max_attempts = max_attempts
        self._retry_base = retry_base_seconds
        self._retry_cap = retry_cap_seconds
        self._retention_seconds = retention_seconds
        self._purge_every = purge_every_seconds
        self._epoch_every = epoch_check_every_seconds
        self._stopping = stopping or asyncio.Event()
        self._wake = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._epoch_checked_at: float | None = None
        self._purged_at: float | None = None
        self._counted_at: float | None = None

    async def run(self) -> None:
        """Publish until cancelled or until ``stopping`` is set (then after the batch in hand)."""
        listener = asyncio.create_task(
            listen_forever(
                self._database_url,
                NOTIFY_CHANNEL,
                lambda _: self._wake.set(),
                on_connect=self._wake.set,  # catch anything written while we were not listening
            )
        )
        backoff = 0.5
        try:
            while not self._stopping.is_set():
                try:
                    await self._housekeeping()
                    sent = await self.publish_pending()
                    backoff = 0.5
                    if sent:
                        continue
                except (TimeoutError, KafkaError, OSError) as exc:
                    log.warning(
                        "broker unavailable, retrying",
                        extra={"fields": {"error": repr(exc), "retry_in_s": backoff}},
                    )
                    await self._drop_producer()
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, self._max_backoff)
                    continue
                self._wake.clear()
                await self._sleep(self._poll_seconds, wake=self._wake)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener
            await self._drop_producer()

    async def _sleep(self, seconds: float, *, wake: asyncio.Event | None = None) -> None:
        """Sleep, cut short by ``wake`` or by a stop request."""
        waiters = [asyncio.ensure_future(self._stopping.wait())]
        if wake is not None:
            waiters.append(asyncio.ensure_future(wake.wait()))
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _housekeeping(self) -> None:
        """The broker epoch check, the retention purge and the gauges, each when it is due."""
        now = time.monotonic()
        due = self._epoch_checked_at is None or now - self._epoch_checked_at >= self._epoch_every
        if due:
            try:
                if await self.check_broker_epoch():
                    self._epoch_checked_at = now
            except KafkaError as exc:
                if _broker_trouble(exc):
                    raise
                # E.g. a broker that refuses to create the marker topic: publishing goes on,
                # only the detection of a broker that lost its data is missing.
                self._epoch_checked_at = now
                log.error(
                    "cannot check the broker epoch",
                    extra={"fields": {"error": repr(exc), "topic": Topics.OUTBOX_EPOCH}},
                )
        if self._purged_at is None or now - self._purged_at >= self._purge_every:
            self._purged_at = now
            purged = await purge_published(
                self._sessionmaker, retention_seconds=self._retention_seconds
            )
            if purged:
                log.info("purged published outbox events", extra={"fields": {"events": purged}})
        if self._counted_at is None or now - self._counted_at >= min(self._poll_seconds, 5.0):
            self._counted_at = now
            await self.update_gauges()

    async def check_broker_epoch(self) -> bool:
        """As the leader, compare the broker with the one the rows went to. False: not leader."""
        async with self._sessionmaker() as session, session.begin():
            if not (await session.execute(_LEADER_SQL)).scalar_one():
                return False
            producer = await self._ensure_producer()
            republished = await check_broker_epoch(
                session,
                bootstrap=self._bootstrap,
                producer=producer,
                admin=await self._ensure_admin(),
            )
        if republished:
            REPUBLISHED.inc(republished)
        return True

    async def update_gauges(self) -> None:
        async with self._sessionmaker() as session:
            backlog, parked = (await session.execute(_COUNTS_SQL)).one()
        BACKLOG.set(backlog)
        PARKED_ROWS.set(parked)

    async def publish_pending(self) -> int:
        """As the leader, send one batch and record each row's outcome. Returns rows handled.

        Raises when the broker itself is in trouble and nothing went out (the caller backs off).
        """
        async with self._sessionmaker() as session, session.begin():
            if not (await session.execute(_LEADER_SQL)).scalar_one():
                return 0  # another replica is publishing; it drains the backlog
            db = await driver_connection(session)
            rows = [_Row(*r) for r in await db.fetch(_CLAIM_SQL, self._batch_size)]
            if not rows:
                return 0
            batch = await self._send(rows)
            if batch.trouble is not None and not batch.sent:
                raise batch.trouble
            if batch.sent:
                await db.execute(_MARK_SENT_SQL, [r.id for r in batch.sent])
            for row_id, (row, error) in batch.failed.items():
                await self._record_failure(session, row_id=row_id, row=row, error=error)
        for topic, sent in Tally(row.topic for row in batch.sent).items():
            PUBLISHED.labels(topic=topic).inc(sent)
        if batch.trouble is not None:
            raise batch.trouble
        return len(batch.sent) + len(batch.failed)

    async def _send(self, rows: Sequence[_Row]) -> _Batch:
        """Send rows in id order, each customer's stopping at its first failing row.

        Rows go out in one record batch per partition (aiokafka's ``send_batch``): a send per
        row cost more Python than everything else the relay does with it. The partition is
        the one Kafka's default partitioner gives the key, as for any other producer
        (:mod:`crm_libs.events.partitions`). A row too large for a batch is sent on its own, so
        aiokafka refuses it alone; a batch the broker refuses fails each of its rows."""
        producer = await self._ensure_producer()
        known = set(await (await self._ensure_admin()).list_topics())
        batch = _Batch()
        held: set[str] = set()  # customers whose earlier event failed in this batch
        partitions: dict[str, list[int]] = {}
        filling: dict[tuple[str, int], tuple[Any, list[Any]]] = {}  # (builder, its rows)
        pending: list[tuple[list[Any], asyncio.Future[Any]]] = []

        async def submit(tp: tuple[str, int]) -> None:
            builder, members = filling.pop(tp)
            pending.append((members, await producer.send_batch(builder, tp[0], partition=tp[1])))

        for n, row in enumerate(rows, 1):
            if n % _YIELD_EVERY == 0:
                await asyncio.sleep(0)  # a consumer's transaction in this process goes on
            if row.key in held:
                continue  # stays in the backlog, behind the failed one
            if row.topic not in known:
                batch.failed[row.id] = (row, f"topic {row.topic!r} does not exist on the broker")
                held.add(row.key)
                continue
            key, value = row.key.encode(), row.envelope.encode()
            if row.topic not in partitions:
                partitions[row.topic] = sorted(await producer.partitions_for(row.topic))
            everyone = partitions[row.topic]
            tp = (row.topic, partition_of(key, everyone))
            if len(key) + len(value) > _ALONE_ABOVE_BYTES:
                if tp in filling:
                    await submit(tp)  # the rows before it first
                try:
                    future = await producer.send(row.topic, value=value, key=key, partition=tp[1])
                except Exception as exc:
                    if _broker_trouble(exc):
                        raise
                    batch.failed[row.id] = (row, repr(exc))
                    held.add(row.key)
                    continue
                pending.append(([row], future))
                continue
            if tp not in filling:
                filling[tp] = (producer.create_batch(), [])
            if filling[tp][0].append(key=key, value=value, timestamp=None) is None:  # full
                await submit(tp)
                filling[tp] = (producer.create_batch(), [])
                filling[tp][0].append(key=key, value=value, timestamp=None)
            filling[tp][1].append(row)
        for tp in list(filling):
            await submit(tp)
        results = await asyncio.wait_for(
            asyncio.gather(*(f for _, f in pending), return_exceptions=True), timeout=30
        )
        for (members, _), result in zip(pending, results, strict=True):
            for row in members:
                if not isinstance(result, BaseException):
                    batch.sent.append(row)
                elif _broker_trouble(result):
                    batch.trouble = result
                else:
                    batch.failed[row.id] = (row, repr(result))
        if batch.sent:
            await self._confirm_topics_exist({r.topic for r in batch.sent})
        return batch

    async def _record_failure(
        self, session: AsyncSession, *, row_id: int, row: Any, error: str
    ) -> None:
        attempts, parked = (
            await session.execute(
                _RECORD_FAILURE_SQL,
                {
                    "id": row_id,
                    "error": error[:500],
                    "max_attempts": self._max_attempts,
                    "base": self._retry_base,
                    "cap": self._retry_cap,
                },
            )
        ).one()
        fields = {
            "outbox_id": row_id,
            "event_id": row.event_id,
            "topic": row.topic,
            "attempts": attempts,
            "error": error,
        }
        if parked:
            PARKED.labels(topic=row.topic).inc()
            log.error("outbox event parked after repeated failures", extra={"fields": fields})
        else:
            log.warning("outbox event failed, will retry", extra={"fields": fields})

    async def _confirm_topics_exist(self, topics: set[str]) -> None:
        """Refuse to count a send whose topic the broker does not list.

        A broker that restarted empty (the embedded, memory-backed one) can acknowledge records
        for a topic that does not exist yet and then lose them when the topic is created: such
        a batch stays unpublished and is sent again once the topic is there.
        """
        missing = topics - set(await (await self._ensure_admin()).list_topics())
        if missing:
            raise KafkaError(f"topics not on the broker yet: {sorted(missing)}")

    async def _ensure_admin(self) -> AIOKafkaAdminClient:
        if self._admin is None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap)
            await admin.start()
            self._admin = admin
        return self._admin

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = make_producer(self._bootstrap)
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def _drop_producer(self) -> None:
        # A new connection may lead to a new broker: check its epoch before the next batch.
        self._epoch_checked_at = None
        admin, self._admin = self._admin, None
        if admin is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(admin.close(), timeout=5)
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), timeout=5)


async def relay_worker(app: Any) -> None:
    """The relay as a service worker, configured from the app's settings."""
    settings = app.state.settings
    relay = OutboxRelay(
        sessionmaker=app.state.sessionmaker,
        database_url=settings.database_url,
        bootstrap=settings.kafka_bootstrap,
        max_attempts=settings.outbox_max_attempts,
        retention_seconds=settings.outbox_retention_days * 86400,
        stopping=getattr(app.state, "stopping", None),
    )
    await relay.run()


# Stopped before the other workers, after the batch in hand (see service_app._stop_workers).
relay_worker.stops_first = True  # type: ignore[attr-defined]
relay_worker.drains_on_stop = True  # type: ignore[attr-defined]
