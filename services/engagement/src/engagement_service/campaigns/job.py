"""The send job: a campaign handed over (``sending``) rendered and queued a chunk at a time.

Each chunk is one transaction: the campaign's row locked (and still this replica's lease),
the next files scanned from the cursor, the recipients' locks taken, rendered and checked
(evaluation.py), their messages written with one ``COPY``, and the cursor, progress and
exclusions written to the campaign. A crash loses at most the chunk in hand, and the next claim
(after the lease) goes on from the committed cursor: no recipient is queued twice. The request
that handed it over returned at once (202); ``GET /campaigns/{id}`` shows the progress.

Names are read from the customer service as the account that asked for the send (a principal
signed again for it, so its store scope and masking stay the customer service's rules), 500
per request; a manual campaign's segment is read from scoring the same way, once per claim.
What the customer service disclosed goes to the gateway's audit trail before it is rendered, as
``engagement:campaigns`` for that account (peer_audit.py): if the trail cannot take it, the
chunk is not queued and the campaign waits for a later claim, as when the customer service is
down.
"""

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from fastapi import FastAPI
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from crm_libs.events.driver import driver_connection
from crm_libs.ids import new_id
from crm_libs.notify import listen_forever
from crm_libs.principal import Principal, sign_principal
from engagement_service.campaigns.audience import next_chunk
from engagement_service.campaigns.evaluation import Voice, counted, evaluate, merge_counts
from engagement_service.campaigns.models import Campaign
from engagement_service.campaigns.service import CHUNK, SEND_CHANNEL, store_today, voice_of
from engagement_service.config import Settings
from engagement_service.member_events import peers
from engagement_service.messages.categories import CARRIER_CLASS
from engagement_service.messages.directory import CustomerDirectory
from engagement_service.messages.service import QUEUED_CHANNEL, SendingRules
from engagement_service.peer_audit import GatewayAudit, on_behalf
from engagement_service.peer_client import PeerUnavailable, new_client

log = logging.getLogger(__name__)

# The send job's subject on the audit trail (``SERVICE_AUDIT_ACTORS`` at the gateway).
SENDER_SUBJECT = "engagement:campaigns"

LEASE = timedelta(minutes=2)
RETRY = timedelta(seconds=30)

COLUMNS = (
    "id",
    "store_id",
    "customer_id",
    "template_id",
    "campaign_id",
    "category",
    "carrier_class",
    "staff_id",
    "signature",
    "body",
    "parameters",
    "status",
    "not_before",
    "created_by",
)

_CLAIM = text(
    """
    UPDATE campaign SET leased_by = :me, lease_until = :until
    WHERE id = (
        SELECT id FROM campaign
        WHERE status = 'sending' AND (lease_until IS NULL OR lease_until <= :now)
        ORDER BY started_at LIMIT 1 FOR UPDATE SKIP LOCKED
    )
    RETURNING id
    """
)


def rules_of(settings: Settings) -> SendingRules:
    return SendingRules(
        forbidden_overrides=settings.sms_forbidden_words,
        unsubscribe_suffix=settings.sms_unsubscribe_suffix,
        cap_messages=settings.sms_frequency_cap_messages,
        cap_days=settings.sms_frequency_cap_days,
        signature=settings.sms_signature,
        default_timezone=settings.default_timezone,
    )


def rows_of(campaign: Campaign, voice: Voice, messages: list[Any]) -> list[tuple[Any, ...]]:
    """The chunk's messages as ``COPY`` rows of ``sms_message`` (``COLUMNS``)."""
    carrier = CARRIER_CLASS[voice.category]
    created_by = f"campaign:{campaign.id}"
    return [
        (
            new_id(),
            campaign.store_id,
            m.customer_id,
            campaign.template_id,
            campaign.id,
            voice.category.value,
            carrier,
            m.staff_id,
            voice.signature,
            m.body,
            orjson.dumps(m.parameters).decode(),
            m.status,
            m.not_before,
            created_by,
        )
        for m in messages
    ]


class CampaignSender:
    """Sends the campaigns handed over, one chunk per transaction."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        directory_for: Callable[[Principal], CustomerDirectory],
        members_of: Callable[[Principal, Campaign], Any],
        rules: SendingRules,
        chunk: int = CHUNK,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        worker_id: str | None = None,
    ) -> None:
        self._sessions = sessionmaker
        self._directory_for = directory_for
        self._members_of = members_of
        self._rules = rules
        self._chunk = chunk
        self._clock = clock
        self.worker_id = worker_id or f"{os.getpid()}-{os.urandom(4).hex()}"

    async def claim(self) -> str | None:
        now = self._clock()
        async with self._sessions() as session, session.begin():
            return (
                await session.execute(
                    _CLAIM, {"me": self.worker_id, "now": now, "until": now + LEASE}
                )
            ).scalar_one_or_none()

    async def send(self, campaign_id: str) -> None:
        """Render and queue the campaign from its cursor to the end (or until the lease is
        lost); a peer that does not answer leaves it for a later claim."""
        try:
            await self._send(campaign_id)
        except PeerUnavailable as exc:
            log.warning(
                "campaign waits for a peer",
                extra={"fields": {"campaign_id": campaign_id, "error": str(exc)}},
            )
            await self._release(campaign_id, until=self._clock() + RETRY)
        except Exception as exc:
            log.exception("campaign failed", extra={"fields": {"campaign_id": campaign_id}})
            await self._finish(campaign_id, status="failed", error=repr(exc)[:500])

    async def _send(self, campaign_id: str) -> None:
        async with self._sessions() as session:
            campaign = await session.get(Campaign, campaign_id)
            assert campaign is not None and campaign.sent_by is not None
            sender = Principal.model_validate(campaign.sent_by)
            directory = self._directory_for(sender)
            voice = await voice_of(
                session, campaign, directory=directory, rules=self._rules, now=self._clock()
            )
            today = await store_today(
                session, store_id=campaign.store_id, default_timezone=self._rules.default_timezone
            )
        members = None
        if campaign.segment is not None:
            members = sorted(set(await self._members_of(sender, campaign)))
        while True:
            now = self._clock()
            voice.due = max(now, campaign.send_at) if campaign.send_at else now
            # Signed again per chunk: a large campaign outlives one signature.
            directory = self._directory_for(sender)
            async with self._sessions() as session, session.begin():
                campaign = (
                    await session.execute(
                        select(Campaign)
                        .where(
                            col(Campaign.id) == campaign_id,
                            col(Campaign.leased_by) == self.worker_id,
                            col(Campaign.status) == "sending",
                        )
                        .with_for_update()
                    )
                ).scalar_one_or_none()
                if campaign is None:  # the lease went to another replica
                    return
                chunk = await next_chunk(
                    session,
                    campaign,
                    after=campaign.cursor,
                    limit=self._chunk,
                    today=today,
                    default_timezone=self._rules.default_timezone,
                    members=members,
                )
                if chunk.last is None:
                    campaign.status = "sent"
                    campaign.finished_at = now
                    campaign.leased_by = campaign.lease_until = None
                    session.add(campaign)
                    return
                found = await evaluate(
                    session,
                    voice,
                    chunk.recipients,
                    directory=directory,
                    rules=self._rules,
                    now=now,
                    lock=True,
                )
                if found.messages:
                    driver = await driver_connection(session)
                    await driver.copy_records_to_table(
                        "sms_message",
                        records=rows_of(campaign, voice, found.messages),
                        columns=COLUMNS,
                    )
                    await session.execute(text(f"NOTIFY {QUEUED_CHANNEL}"))
                campaign.cursor = chunk.last
                campaign.processed += chunk.scanned
                campaign.recipients += len(chunk.recipients)
                campaign.excluded = merge_counts(campaign.excluded, counted(found.excluded))
                campaign.lease_until = now + LEASE
                session.add(campaign)

    async def _release(self, campaign_id: str, *, until: datetime) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                text("UPDATE campaign SET lease_until = :until WHERE id = :id AND leased_by = :me"),
                {"until": until, "id": campaign_id, "me": self.worker_id},
            )

    async def _finish(self, campaign_id: str, *, status: str, error: str | None) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                text(
                    "UPDATE campaign SET status = :status, error = :error, finished_at = now(), "
                    "leased_by = NULL, lease_until = NULL "
                    "WHERE id = :id AND leased_by = :me AND status = 'sending'"
                ),
                {"status": status, "error": error, "id": campaign_id, "me": self.worker_id},
            )

    async def run_once(self) -> bool:
        """Send one claimed campaign; whether there was one."""
        campaign_id = await self.claim()
        if campaign_id is None:
            return False
        await self.send(campaign_id)
        return True


async def campaign_worker(app: FastAPI) -> None:
    """The send job as a service worker, woken by each campaign handed over."""
    settings: Settings = app.state.settings
    client = new_client(settings, "customer")
    gateway = new_client(settings, "gateway")
    audit = GatewayAudit(gateway)

    def token(principal: Principal) -> str:
        return sign_principal(principal, secret=settings.principal_secret, ttl_seconds=300)

    def directory_for(principal: Principal) -> CustomerDirectory:
        recorder = on_behalf(
            audit, service=SENDER_SUBJECT, account=principal, secret=settings.principal_secret
        )
        return CustomerDirectory(client, token(principal), audit=recorder)

    async def members_of(principal: Principal, campaign: Campaign) -> list[str]:
        return await peers.segment_members(
            app,
            token=token(principal),
            store_id=campaign.store_id,
            filters=dict(campaign.segment or {}),
        )

    sender = CampaignSender(
        sessionmaker=app.state.sessionmaker,
        directory_for=directory_for,
        members_of=members_of,
        rules=rules_of(settings),
    )
    wake = asyncio.Event()
    listener = asyncio.create_task(
        listen_forever(
            settings.database_url, SEND_CHANNEL, lambda _: wake.set(), on_connect=wake.set
        )
    )
    stopping: asyncio.Event = getattr(app.state, "stopping", None) or asyncio.Event()
    try:
        while not stopping.is_set():
            wake.clear()
            try:
                if await sender.run_once():
                    continue
            except Exception:
                log.exception("the campaign send job failed, retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=settings.sms_poll_seconds)
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await listener
        await client.aclose()
        await gateway.aclose()
