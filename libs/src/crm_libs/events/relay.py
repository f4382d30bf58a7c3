"""Publishes committed outbox rows to Kafka and marks them sent.

Several replicas may run it: rows are claimed with ``FOR UPDATE SKIP LOCKED``. It sleeps on
``LISTEN`` and wakes on the NOTIFY that the outbox trigger sends, with a slow poll as a safety net.
While the broker is away it backs off and retries; nothing is marked sent until Kafka acked it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_libs.events.outbox import NOTIFY_CHANNEL
from crm_libs.notify import listen_forever

log = logging.getLogger(__name__)

_CLAIM_SQL = text(
    """
    SELECT id, topic, key, envelope FROM outbox_event
    WHERE published_at IS NULL
    ORDER BY id
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
    """
)
_MARK_SENT_SQL = text(
    "UPDATE outbox_event SET published_at = :now, attempts = attempts + 1 WHERE id = ANY(:ids)"
)
_RECORD_FAILURE_SQL = text(
    "UPDATE outbox_event SET attempts = attempts + 1, last_error = :error WHERE id = ANY(:ids)"
)


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


class OutboxRelay:
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        database_url: str,
        bootstrap: str,
        batch_size: int = 500,
        poll_seconds: float = 5.0,
        max_backoff_seconds: float = 10.0,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._database_url = database_url
        self._bootstrap = bootstrap
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._max_backoff = max_backoff_seconds
        self._wake = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None
        self._admin: AIOKafkaAdminClient | None = None

    async def run(self) -> None:
        """Publish until cancelled."""
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
            while True:
                try:
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
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self._max_backoff)
                    continue
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_seconds)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener
            await self._drop_producer()

    async def publish_pending(self) -> int:
        """Claim one batch of unpublished rows, send them, mark them sent. Returns how many."""
        failure: Exception | None = None
        async with self._sessionmaker() as session, session.begin():
            rows = (await session.execute(_CLAIM_SQL, {"limit": self._batch_size})).all()
            if not rows:
                return 0
            ids = [r.id for r in rows]
            try:
                producer = await self._ensure_producer()
                futures = [
                    await producer.send(r.topic, value=orjson.dumps(r.envelope), key=r.key.encode())
                    for r in rows
                ]
                await asyncio.wait_for(asyncio.gather(*futures), timeout=30)
                await self._confirm_topics_exist({r.topic for r in rows})
            except Exception as exc:
                failure = exc
            else:
                await session.execute(_MARK_SENT_SQL, {"now": datetime.now(UTC), "ids": ids})
        if failure is not None:
            # Counted after the claim's transaction ended, so the rows are no longer locked.
            await self._record_failure(ids, repr(failure))
            raise failure
        return len(rows)

    async def _confirm_topics_exist(self, topics: set[str]) -> None:
        """Refuse to count a send whose topic the broker does not list.

        A broker that restarted empty (the embedded, memory-backed one) can acknowledge records
        for a topic that does not exist yet and then lose them when the topic is created: such
        a batch stays unpublished and is sent again once the topic is there.
        """
        admin = self._admin
        if admin is None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap)
            await admin.start()
            self._admin = admin
        missing = topics - set(await admin.list_topics())
        if missing:
            raise KafkaError(f"topics not on the broker yet: {sorted(missing)}")

    async def _record_failure(self, ids: list[int], error: str) -> None:
        with contextlib.suppress(Exception):
            async with self._sessionmaker() as session, session.begin():
                await session.execute(_RECORD_FAILURE_SQL, {"ids": ids, "error": error[:500]})

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
    )
    await relay.run()
