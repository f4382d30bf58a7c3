"""The sending worker: queued messages claimed from the database and sent through the provider.

Several replicas may run it side by side: a claim takes due messages ``FOR UPDATE SKIP
LOCKED`` and stamps them with a lease (``leased_by``, ``lease_until``), committed at once, so no
other worker takes them until the lease runs out. Each message is then checked again (the file
still active, no opt-out since it was queued, not in the store's quiet hours: held to 08:00
then), sent, and its outcome committed on its own, before the next one is sent:

- accepted: the provider's id and the number's hash are recorded and the message is ``sent``
  (``delivered`` at once when the provider says acceptance is delivery);
- retryable: it stays ``queued`` with ``not_before`` pushed back exponentially
  (``sms_retry_base_seconds`` doubling up to ``sms_retry_max_seconds``, or longer when the
  provider asks), and is ``failed`` after ``sms_max_attempts``;
- rejected (an invalid number): ``failed`` for good, with the provider's code.

At-least-once, by choice: a message is marked only after the provider answered, so a worker
that dies mid-batch loses nothing. What was sent before the crash is already recorded and is
never claimed again; what was not yet sent waits out the lease and goes with the next claim. The
one message in flight at the moment of the crash (sent, answer not yet committed) is the only
one that can go twice, and it goes with the same out-id (the message's id): a provider with
idempotent sends by out-id drops the second, and its delivery reports carry the out-id to match
either. At-most-once (marking before sending) would instead lose that message silently, and a
care message that never arrives is worse than, rarely, one that arrives twice. A worker told to
stop releases what it claimed and has not sent, so a restart takes it up at once.
"""

import asyncio
import contextlib
import logging
import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_libs.notify import listen_forever
from engagement_service.config import Settings
from engagement_service.messages.categories import Category
from engagement_service.messages.directory import CustomerDirectory, sender_directory
from engagement_service.messages.opt_outs import consent_of, phone_hash, refusal
from engagement_service.messages.providers.base import (
    OutgoingMessage,
    SendAccepted,
    SendOutcome,
    SendRejected,
    SendRetryable,
    SmsProvider,
)
from engagement_service.messages.quiet_hours import is_quiet, quiet_ends_at
from engagement_service.messages.service import QUEUED_CHANNEL
from engagement_service.peer_audit import GatewayAudit
from engagement_service.peer_client import PeerUnavailable, new_client

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SenderSettings:
    batch: int
    lease_seconds: float
    retry_base_seconds: float
    retry_max_seconds: float
    max_attempts: int
    default_timezone: str
    # Keys the numbers' hashes (opt_outs.phone_hash).
    secret: str

    @classmethod
    def of(cls, settings: Settings) -> "SenderSettings":
        return cls(
            batch=settings.sms_send_batch,
            lease_seconds=settings.sms_lease_seconds,
            retry_base_seconds=settings.sms_retry_base_seconds,
            retry_max_seconds=settings.sms_retry_max_seconds,
            max_attempts=settings.sms_max_attempts,
            default_timezone=settings.default_timezone,
            secret=settings.principal_secret,
        )


_CLAIM = text(
    """
    UPDATE sms_message AS m
    SET leased_by = :me, lease_until = CAST(:now AS timestamptz) + make_interval(secs => :lease)
    FROM (
        SELECT id FROM sms_message
        WHERE status IN ('queued', 'held_quiet_hours') AND not_before <= :now
          AND (lease_until IS NULL OR lease_until <= :now)
        ORDER BY not_before
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    ) AS due
    WHERE m.id = due.id
    RETURNING m.id, m.store_id, m.customer_id, m.template_id, m.category, m.carrier_class,
              m.signature, m.body, m.parameters, m.attempts
    """
)
_FILE = text("SELECT status, timezone FROM customer_file WHERE customer_id = :customer_id")
_HOLD = text(
    """
    UPDATE sms_message SET status = 'held_quiet_hours', not_before = :until,
           leased_by = NULL, lease_until = NULL
    -- only while the claim is still this worker's
    WHERE id = :id AND leased_by = :me AND status IN ('queued', 'held_quiet_hours')
    """
)
_STOP = text(
    """
    UPDATE sms_message SET status = :status, reason = :reason, failed_at = :now,
           leased_by = NULL, lease_until = NULL
    -- only while the claim is still this worker's
    WHERE id = :id AND leased_by = :me AND status IN ('queued', 'held_quiet_hours')
    """
)
_ACCEPTED = text(
    """
    UPDATE sms_message
    SET status = CASE WHEN :delivered THEN 'delivered' ELSE 'sent' END,
        provider = :provider, provider_message_id = :provider_message_id,
        phone_hash = :phone_hash, attempts = attempts + 1, reason = NULL, sent_at = :now,
        delivered_at = CASE WHEN :delivered THEN CAST(:now AS timestamptz) END,
        leased_by = NULL, lease_until = NULL
    -- only while the claim is still this worker's
    WHERE id = :id AND leased_by = :me AND status IN ('queued', 'held_quiet_hours')
    """
)
_RETRY = text(
    """
    UPDATE sms_message
    SET status = 'queued', attempts = attempts + 1, reason = :reason, not_before = :retry_at,
        provider = :provider, phone_hash = :phone_hash, leased_by = NULL, lease_until = NULL
    -- only while the claim is still this worker's
    WHERE id = :id AND leased_by = :me AND status IN ('queued', 'held_quiet_hours')
    """
)
_REJECTED = text(
    """
    UPDATE sms_message
    SET status = 'failed', attempts = attempts + 1, reason = :reason, failed_at = :now,
        provider = :provider, phone_hash = :phone_hash, leased_by = NULL, lease_until = NULL
    -- only while the claim is still this worker's
    WHERE id = :id AND leased_by = :me AND status IN ('queued', 'held_quiet_hours')
    """
)
_RELEASE = text(
    """
    UPDATE sms_message SET leased_by = NULL, lease_until = NULL, not_before = :not_before
    WHERE id = ANY(:ids) AND leased_by = :me AND status IN ('queued', 'held_quiet_hours')
    """
)


def backoff_seconds(attempts: int, *, base: float, ceiling: float) -> float:
    """The wait after the ``attempts``-th failed attempt: base, 2×base, 4×base, … up to ceiling."""
    return min(base * 2 ** max(attempts - 1, 0), ceiling)


class MessageSender:
    """Claims due messages and sends them through ``provider``, one outcome at a time."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        provider: SmsProvider,
        directory_for: Callable[[str], CustomerDirectory],
        settings: SenderSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        stopping: asyncio.Event | None = None,
        worker_id: str | None = None,
    ) -> None:
        self._sessions = sessionmaker
        self._provider = provider
        self._directory_for = directory_for
        self._settings = settings
        self._clock = clock
        self._stopping = stopping or asyncio.Event()
        self.worker_id = worker_id or f"{os.getpid()}-{os.urandom(4).hex()}"

    async def _write(self, statement: Any, params: dict[str, Any]) -> int:
        async with self._sessions() as session:
            result = await session.execute(statement, {"me": self.worker_id, **params})
            await session.commit()
            return int(result.rowcount)  # type: ignore[attr-defined]

    async def send_due(self) -> int:
        """Claim one batch of due messages and send them; how many were claimed."""
        now = self._clock()
        async with self._sessions() as session:
            claimed = list(
                (
                    await session.execute(
                        _CLAIM,
                        {
                            "me": self.worker_id,
                            "now": now,
                            "lease": self._settings.lease_seconds,
                            "batch": self._settings.batch,
                        },
                    )
                ).mappings()
            )
            await session.commit()
        by_store: dict[str, list[Any]] = defaultdict(list)
        for row in claimed:
            by_store[row["store_id"]].append(row)
        for store_id, rows in by_store.items():
            if self._stopping.is_set():
                await self._release([r["id"] for r in rows], not_before=now)
                continue
            try:
                numbers = await self._directory_for(store_id).numbers(
                    [r["customer_id"] for r in rows]
                )
            except PeerUnavailable as exc:
                # Not the messages' fault: no attempt counted, tried again after the base wait.
                log.warning(
                    "numbers unavailable, messages wait",
                    extra={"fields": {"store_id": store_id, "error": str(exc)}},
                )
                retry_at = now + timedelta(seconds=self._settings.retry_base_seconds)
                await self._release([r["id"] for r in rows], not_before=retry_at)
                continue
            for index, row in enumerate(rows):
                if self._stopping.is_set():
                    await self._release([r["id"] for r in rows[index:]], not_before=now)
                    break
                await self._send_one(row, numbers)
        return len(claimed)

    async def _release(self, ids: list[str], *, not_before: datetime) -> None:
        await self._write(_RELEASE, {"ids": ids, "not_before": not_before})

    async def _send_one(self, row: Any, numbers: dict[str, str | None]) -> None:
        now = self._clock()
        mine = {"id": row["id"], "now": now}
        category = Category(row["category"])
        async with self._sessions() as session:
            file = (await session.execute(_FILE, {"customer_id": row["customer_id"]})).one_or_none()
            consent = await consent_of(
                session, customer_id=row["customer_id"], signature=row["signature"]
            )
        if file is None or file.status != "active" or row["customer_id"] not in numbers:
            await self._write(_STOP, {**mine, "status": "failed", "reason": "file_not_active"})
            return
        if (reason := refusal(category, consent)) is not None:
            await self._write(_STOP, {**mine, "status": "opted_out", "reason": reason})
            return
        zone = ZoneInfo(file.timezone or self._settings.default_timezone)
        if is_quiet(now, zone):
            await self._write(_HOLD, {"id": row["id"], "until": quiet_ends_at(now, zone)})
            return
        number = numbers[row["customer_id"]]
        if not number:
            await self._write(_STOP, {**mine, "status": "failed", "reason": "no_number"})
            return
        outcome = await self._provider_send(row, number)
        provider = {"provider": self._provider.name}
        hashed = {"phone_hash": phone_hash(number, secret=self._settings.secret)}
        if isinstance(outcome, SendAccepted):
            written = await self._write(
                _ACCEPTED,
                {
                    **mine,
                    **provider,
                    **hashed,
                    "provider_message_id": outcome.provider_message_id,
                    "delivered": outcome.delivered,
                },
            )
            if not written:
                log.warning(
                    "a message was sent after its claim was lost",
                    extra={"fields": {"message_id": row["id"]}},
                )
        elif isinstance(outcome, SendRejected):
            reason = f"{outcome.code or 'rejected'}: {outcome.reason}"
            await self._write(_REJECTED, {**mine, **provider, **hashed, "reason": reason})
        else:
            attempts = row["attempts"] + 1
            if attempts >= self._settings.max_attempts:
                reason = f"gave_up after {attempts} attempts: {outcome.reason}"
                await self._write(_REJECTED, {**mine, **provider, **hashed, "reason": reason})
                return
            wait = backoff_seconds(
                attempts,
                base=self._settings.retry_base_seconds,
                ceiling=self._settings.retry_max_seconds,
            )
            wait = max(wait, outcome.retry_after_seconds or 0.0)
            await self._write(
                _RETRY,
                {
                    **mine,
                    **provider,
                    **hashed,
                    "reason": f"retrying: {outcome.reason}",
                    "retry_at": now + timedelta(seconds=wait),
                },
            )

    async def _provider_send(self, row: Any, number: str) -> SendOutcome:
        message = OutgoingMessage(
            out_id=row["id"],
            phone=number,
            signature=row["signature"],
            text=row["body"],
            carrier_class=row["carrier_class"],
            category=row["category"],
            template_id=row["template_id"],
            parameters=dict(row["parameters"] or {}),
            attempt=row["attempts"],
        )
        try:
            return await self._provider.send(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a provider's bug or an unmapped failure: try again later
            log.exception("provider raised", extra={"fields": {"message_id": row["id"]}})
            return SendRetryable(reason=repr(exc))

    async def run(self, *, database_url: str, poll_seconds: float) -> None:
        """Send until cancelled or until ``stopping`` is set, woken by each queued message."""
        wake = asyncio.Event()
        listener = asyncio.create_task(
            listen_forever(database_url, QUEUED_CHANNEL, lambda _: wake.set(), on_connect=wake.set)
        )
        try:
            while not self._stopping.is_set():
                wake.clear()
                try:
                    if await self.send_due() >= self._settings.batch:
                        continue
                except Exception:
                    log.exception("sending messages failed, retrying")
                await _wait(wake, self._stopping, poll_seconds)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener


async def _wait(wake: asyncio.Event, stopping: asyncio.Event, seconds: float) -> None:
    waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stopping.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def message_worker(app: FastAPI) -> None:
    """The sending worker as a service worker: the provider ``CRM_SMS_PROVIDER`` chose."""
    settings: Settings = app.state.settings
    provider: SmsProvider = app.state.sms_provider
    client = new_client(settings, "customer")
    # The numbers' reads go on the audit trail before any message is sent to them.
    gateway = new_client(settings, "gateway")
    audit = GatewayAudit(gateway)
    sender = MessageSender(
        sessionmaker=app.state.sessionmaker,
        provider=provider,
        directory_for=lambda store_id: sender_directory(
            client, store_id=store_id, secret=settings.principal_secret, audit=audit
        ),
        settings=SenderSettings.of(settings),
        stopping=getattr(app.state, "stopping", None),
    )
    try:
        await sender.run(database_url=settings.database_url, poll_seconds=settings.sms_poll_seconds)
    finally:
        await client.aclose()
        await gateway.aclose()
        await provider.aclose()


# Stopped after the batch in hand: what it claimed and did not send is released for a restart.
message_worker.drains_on_stop = True  # type: ignore[attr-defined]
