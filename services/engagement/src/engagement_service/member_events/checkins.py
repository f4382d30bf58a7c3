"""Checking a customer in at a member event, with the guests they brought.

- once per event and customer: a second check-in is a 409;
- the event's capacity counts the people in, customers and guests: a check-in that would pass
  it is a 409 naming the capacity and the places left;
- a customer who was not invited is refused (409) unless the check-in says ``walk_in: true``:
  walk-ins happen (DOMAIN.md §6), and are then recorded as such (an invitation marked
  ``walk_in``), but an explicit flag keeps a tap on the wrong name or the wrong event from
  counting as attendance silently;
- each guest's file is linked or opened (guest_files.py), pending when the customer service is
  down, so the check-in itself never waits for it to come back;
- ``event.attended`` for the customer and ``event.guest_brought`` per guest (from the customer)
  go into the outbox in the check-in's own transaction.
"""

from dataclasses import dataclass
from datetime import datetime

from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_libs.events.envelope import Topics
from crm_libs.events.outbox import enqueue
from crm_libs.principal import Principal
from crm_libs.problems import Conflict
from engagement_service.member_events import guest_files, peers
from engagement_service.member_events.events import event_attended, guest_brought
from engagement_service.member_events.invitations import active_files, invalid
from engagement_service.member_events.models import (
    PENDING,
    EventCheckIn,
    EventGuest,
    EventInvitation,
    StoreEvent,
)
from engagement_service.member_events.schemas import CheckInCreate
from engagement_service.peer_client import PeerUnavailable, Refused


@dataclass(slots=True)
class CheckedIn:
    check_in: EventCheckIn
    guests: list[EventGuest]


async def check_in(
    session: AsyncSession,
    *,
    app: FastAPI,
    token: str,
    principal: Principal,
    event: StoreEvent,
    check_in_in: CheckInCreate,
    now: datetime,
) -> CheckedIn:
    """Check a customer of the event's store in at the open event (locked by the caller)."""
    customer_id = check_in_in.customer_id
    if not await active_files(session, store_id=event.store_id, customer_ids=[customer_id]):
        raise invalid(
            [{"field": "customer_id", "message": "no active customer of the event's store"}],
            "customer_id: no active customer of the event's store",
        )
    held = await session.get(EventCheckIn, (event.id, customer_id))
    if held is not None:
        raise Conflict(f"The customer already checked in at {held.checked_in_at.isoformat()}")
    invitation = await session.get(EventInvitation, (event.id, customer_id))
    if invitation is None and not check_in_in.walk_in:
        raise Conflict(
            "The customer was not invited to this event: check them in with walk_in true "
            "to record a walk-in"
        )
    people = 1 + len(check_in_in.guests)
    inside = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(EventCheckIn.guests), 0)).where(
                col(EventCheckIn.event_id) == event.id
            )
        )
    ).one()
    left = event.capacity - inside[0] - inside[1]
    if people > left:
        raise Conflict(
            f"Over capacity: the event holds {event.capacity} people and {max(0, left)} "
            f"places are left; this check-in brings {people}",
            errors=[{"field": "capacity", "message": f"{max(0, left)} of {event.capacity} left"}],
        )
    guests = await _guests(
        app, token=token, principal=principal, event=event, check_in_in=check_in_in, now=now
    )
    walk_in = invitation is None
    if walk_in:
        session.add(
            EventInvitation(
                event_id=event.id,
                customer_id=customer_id,
                store_id=event.store_id,
                walk_in=True,
                invited_by=principal.subject,
            )
        )
    record = EventCheckIn(
        event_id=event.id,
        customer_id=customer_id,
        store_id=event.store_id,
        checked_in_at=now,
        walk_in=walk_in,
        guests=len(guests),
        checked_in_by=principal.subject,
    )
    session.add(record)
    session.add_all(guests)
    await session.flush()
    enqueue(
        session,
        topic=Topics.ENGAGEMENT,
        event=event_attended(event, customer_id=customer_id, at=now),
    )
    for guest in guests:
        enqueue(session, topic=Topics.ENGAGEMENT, event=guest_brought(event, guest=guest))
    return CheckedIn(record, guests)


async def _guests(
    app: FastAPI,
    *,
    token: str,
    principal: Principal,
    event: StoreEvent,
    check_in_in: CheckInCreate,
    now: datetime,
) -> list[EventGuest]:
    """Each guest with their file: the phones are all looked up before any file is opened, so
    a number the customer service refuses (a 422 naming the guest) opens no file for the others.
    Once the customer service fails to answer, the rest wait for the guest-file job."""
    guests = []
    reachable = True
    found: dict[str, list[str]] = {}
    for index, guest_in in enumerate(check_in_in.guests):
        if not reachable or guest_in.phone in found:
            continue
        try:
            found[guest_in.phone] = await peers.files_with_phone(
                app, token=token, store_id=event.store_id, phone=guest_in.phone
            )
        except Refused as refused:
            message = "; ".join(str(e.get("message")) for e in refused.errors) or refused.detail
            raise invalid(
                [{"field": f"guests.{index}.phone", "message": message}],
                f"guests.{index}.phone: {message}",
            ) from refused
        except PeerUnavailable:
            reachable = False
    opened: dict[str, str] = {}
    for index, guest_in in enumerate(check_in_in.guests):
        guest = EventGuest(
            event_id=event.id,
            store_id=event.store_id,
            inviter_customer_id=check_in_in.customer_id,
            file=PENDING,
            recorded_by=guest_files.recorded_by(principal),
            brought_at=now,
        )
        files = found.get(guest_in.phone)
        if files:
            guest.file, guest.guest_customer_id = guest_files.LINKED, files[0]
        elif guest_in.phone in opened:
            guest.file, guest.guest_customer_id = guest_files.LINKED, opened[guest_in.phone]
        elif reachable and files is not None:
            body = guest_files.prospect_body(
                store_id=event.store_id,
                event_id=event.id,
                inviter_id=check_in_in.customer_id,
                name=guest_in.name,
                phone=guest_in.phone,
            )
            try:
                guest.guest_customer_id = await peers.open_file(app, token=token, body=body)
                guest.file = guest_files.CREATED
                opened[guest_in.phone] = guest.guest_customer_id
            except Refused as refused:
                raise invalid(
                    [
                        {
                            "field": f"guests.{index}.{e.get('field')}",
                            "message": str(e.get("message")),
                        }
                        for e in refused.errors
                    ]
                    or [{"field": f"guests.{index}", "message": refused.detail}],
                    f"guests.{index}: {refused.detail}",
                ) from refused
            except PeerUnavailable:
                reachable = False
        if guest.file == PENDING:
            guest.name, guest.phone = guest_in.name, guest_in.phone
            guest.next_attempt_at = now
        guests.append(guest)
    return guests
