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

A batch row (:func:`crm_libs.events.outbox.stage_batch`: a bulk writer's many events, an
import's chunk of registrations) is claimed, retried, parked and unparked as one row, its events
sent one by one; a customer's events are those ``WHERE key = $1 OR $1 = ANY(keys)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter as Tally
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_libs.events.broker_epoch import check_broker_epoch
from crm_libs.events.driver import driver_connection
from crm_libs.events.envelope import Topics
from crm_libs.events.outbox import NOTIFY_CHANNEL, purge_published
from crm_libs.events.relay_metrics import BACKLOG, PARKED_ROWS, PUBLISHED, REPUBLISHED
from crm_libs.events.relay_rows import (
    CLAIM_SQL,
    COUNTS_SQL,
    DURABLE_SQL,
    LEADER_SQL,
    MARK_SENT_SQL,
    SYNCHRONOUS_SQL,
    ClaimedRow,
    record_failure,
)
from crm_libs.events.relay_sends import BrokerTopics, broker_trouble, make_producer, send_rows
from crm_libs.notify import listen_forever

# make_producer: importable from here, where the consumer and crm-dlq take it.
__all__ = ["OutboxRelay", "make_producer", "relay_worker"]

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        database_url: str,
        bootstrap: str,
        # Events per claim (a batch row's count as many as it holds): a backlog of thousands (a
        # re-rank's score.changed) goes out in a few round trips and broker metadata checks
        # rather than one per few hundred rows.
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
        # What the broker listed at the last send: a claim asks again only for another topic.
        self._topics = BrokerTopics()
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
                if broker_trouble(exc):
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
            if not (await session.execute(LEADER_SQL)).scalar_one():
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
            backlog, parked = (await session.execute(COUNTS_SQL)).one()
        BACKLOG.set(backlog)
        PARKED_ROWS.set(parked)

    async def publish_pending(self) -> int:
        """As the leader, send one batch and record each row's outcome. Returns rows handled.

        Raises when the broker itself is in trouble and nothing went out (the caller backs off).
        """
        async with self._sessionmaker() as session, session.begin():
            if not (await session.execute(LEADER_SQL)).scalar_one():
                return 0  # another replica is publishing; it drains the backlog
            db = await driver_connection(session)
            rows = [ClaimedRow(*r) for r in await db.fetch(CLAIM_SQL, self._batch_size)]
            if not rows:
                return 0
            batch_rows = [row.id for row in rows if row.keys is not None]
            if batch_rows:
                await self._make_durable(batch_rows[0])
            batch = await send_rows(
                rows,
                producer=await self._ensure_producer(),
                admin=await self._ensure_admin(),
                topics=self._topics,
            )
            if batch.trouble is not None and not batch.sent:
                raise batch.trouble
            if batch.sent:
                await db.execute(MARK_SENT_SQL, [r.id for r in batch.sent])
            for row_id, (row, error) in batch.failed.items():
                await record_failure(
                    session,
                    row_id=row_id,
                    row=row,
                    error=error,
                    max_attempts=self._max_attempts,
                    retry_base=self._retry_base,
                    retry_cap=self._retry_cap,
                )
        published: Tally[str] = Tally()
        for row in batch.sent:
            published[row.topic] += row.events
        for topic, sent in published.items():
            PUBLISHED.labels(topic=topic).inc(sent)
        if batch.trouble is not None:
            raise batch.trouble
        return len(batch.sent) + len(batch.failed)

    async def _make_durable(self, row_id: int) -> None:
        """Make every transaction committed so far durable, before their batch rows are sent.

        A bulk writer may commit without waiting for the WAL's flush (an import's chunk does:
        ``stage_batch``); a server crash could then lose the chunk, its files and its progress
        together, and the job write it again, but not events consumers had already applied. A
        transaction of our own that commits synchronously flushes the WAL up to its commit,
        past every commit the claim saw."""
        async with self._sessionmaker() as session, session.begin():
            await session.execute(SYNCHRONOUS_SQL)
            await session.execute(DURABLE_SQL, {"id": row_id})

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
        # A new connection may lead to a new broker: check its epoch before the next batch,
        # and ask it for its topics.
        self._epoch_checked_at = None
        self._topics = BrokerTopics()
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
