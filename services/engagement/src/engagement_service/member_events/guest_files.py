"""A guest's file in the customer service: an existing customer of the store with the guest's
phone is linked; otherwise a prospect file is opened with the inviter as referrer (``POST
/customers``, source ``referral`` naming the event, stage ``attended``), as the account that
checked the guest in.

At check-in this is asked at once. When the customer service does not answer, the check-in is
not lost: the guest is kept as ``pending`` (name and phone held for the purpose) and the
guest-file job opens the file later, with backoff, as the same account (a principal signed again
for it: the customer service's rules and store scope stay the caller's). The job looks the phone
up before it opens a file, so a creation whose answer was lost is found and linked, not doubled.
Once the file exists, the guest's name and phone are cleared: engagement keeps no personal data.
The job's lookups and files go to the gateway's audit trail as ``engagement:guests`` for that
account (peer_audit.py); a guest whose answers the trail cannot take stays pending.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_libs.principal import Principal, sign_principal
from engagement_service.care.daily import check_every
from engagement_service.config import Settings
from engagement_service.member_events import peers
from engagement_service.member_events.models import (
    CREATED,
    LINKED,
    PENDING,
    REFUSED,
    EventGuest,
)
from engagement_service.peer_audit import GatewayAudit, Recorder, on_behalf
from engagement_service.peer_client import PeerUnavailable, Refused, new_client

log = logging.getLogger(__name__)

# The job's wait before trying a pending guest again: doubling from this, at most a day.
FIRST_RETRY = timedelta(seconds=5)
LAST_RETRY = timedelta(days=1)
_JOB_BATCH = 20

# The guest-file job's subject on the audit trail (``SERVICE_AUDIT_ACTORS`` at the gateway).
JOB_SUBJECT = "engagement:guests"


@dataclass(slots=True)
class GuestFile:
    """A guest's file as the customer service answered: ``file`` linked, created or pending."""

    file: str
    customer_id: str | None = None


def prospect_body(
    *, store_id: str, event_id: str, inviter_id: str, name: str, phone: str
) -> dict[str, Any]:
    """The guest's new file: a prospect who attended, referred by the inviter (DOMAIN.md §1)."""
    return {
        "store_id": store_id,
        "name": name,
        "phone": phone,
        "referrer_id": inviter_id,
        # ``cost`` given: the customer service answers a source without one with a 500 today.
        "source": {
            "channel": "referral",
            "method": "member_event",
            "activity_id": event_id,
            "cost": "0.00",
        },
        "prospect": {"stage": "attended"},
    }


async def find_or_open(
    app: FastAPI,
    *,
    token: str,
    store_id: str,
    event_id: str,
    inviter_id: str,
    name: str,
    phone: str,
    audit: Recorder | None = None,
) -> GuestFile:
    """The guest's file, linked or opened; :class:`PeerUnavailable` or
    :class:`Refused` from the customer service as they come. ``audit``: where the
    answers' disclosures go outside a request."""
    found = await peers.files_with_phone(
        app, token=token, store_id=store_id, phone=phone, audit=audit
    )
    if found:
        return GuestFile(LINKED, found[0])
    body = prospect_body(
        store_id=store_id, event_id=event_id, inviter_id=inviter_id, name=name, phone=phone
    )
    return GuestFile(CREATED, await peers.open_file(app, token=token, body=body, audit=audit))


def recorded_by(principal: Principal) -> dict[str, str | None]:
    return {
        "subject": principal.subject,
        "role": principal.role.value,
        "store_id": principal.store_id,
        "staff_id": principal.staff_id,
    }


def retry_after(attempts: int) -> timedelta:
    return min(LAST_RETRY, FIRST_RETRY * (2 ** max(0, attempts - 1)))


async def open_pending(
    session: AsyncSession, *, app: FastAPI, now: datetime, secret: str, audit: GatewayAudit
) -> dict[str, int]:
    """Try the pending guests that are due (locked, so replicas share the queue); counts by
    outcome. What the answers disclose goes to ``audit`` first, for the account that checked
    the guest in."""
    due = (
        await session.execute(
            select(EventGuest)
            .where(col(EventGuest.file) == PENDING, col(EventGuest.next_attempt_at) <= now)
            .order_by(col(EventGuest.next_attempt_at))
            .limit(_JOB_BATCH)
            .with_for_update(skip_locked=True)
        )
    ).scalars()
    outcome: dict[str, int] = {}
    for guest in list(due):
        account = Principal.model_validate(guest.recorded_by)
        token = sign_principal(account, secret=secret)
        recorder = on_behalf(audit, service=JOB_SUBJECT, account=account, secret=secret)
        try:
            found = await find_or_open(
                app,
                token=token,
                store_id=guest.store_id,
                event_id=guest.event_id,
                inviter_id=guest.inviter_customer_id,
                name=guest.name or "",
                phone=guest.phone or "",
                audit=recorder,
            )
        except PeerUnavailable as exc:
            guest.attempts += 1
            guest.next_attempt_at = now + retry_after(guest.attempts)
            guest.last_error = str(exc)[:500]
            outcome[PENDING] = outcome.get(PENDING, 0) + 1
        except Refused as refused:
            # Values the customer service will never take (the file was erased, the inviter
            # merged away): kept with the reason for the store to see, not retried.
            guest.file = REFUSED
            guest.last_error = refused.detail[:500]
            outcome[REFUSED] = outcome.get(REFUSED, 0) + 1
        else:
            guest.file = found.file
            guest.guest_customer_id = found.customer_id
            guest.name = guest.phone = None
            guest.last_error = None
            outcome[found.file] = outcome.get(found.file, 0) + 1
        session.add(guest)
    await session.flush()
    return outcome


async def guest_files_worker(app: FastAPI) -> None:
    """Every ``guest_file_check_seconds``, open the files of guests checked in while the
    customer service was down."""
    settings: Settings = app.state.settings
    gateway = new_client(settings, "gateway")
    audit = GatewayAudit(gateway)

    async def check() -> None:
        try:
            async with app.state.sessionmaker() as session, session.begin():
                outcome = await open_pending(
                    session,
                    app=app,
                    now=datetime.now(UTC),
                    secret=settings.principal_secret,
                    audit=audit,
                )
        except Exception:  # the database away for a moment: the next round tries again
            log.exception("pending guest files not tried")
            return
        if outcome:
            log.info("pending guest files tried", extra={"fields": outcome})

    try:
        await check_every(settings.guest_file_check_seconds, check)
    finally:
        await gateway.aclose()
