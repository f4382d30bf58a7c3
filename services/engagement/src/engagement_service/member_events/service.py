"""A store's member events: scheduled, read with their counts, listed, cancelled; each schedule
and cancellation announced on ``crm.engagement.v1`` in the transaction that writes it."""

from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_libs.events.envelope import Topics
from crm_libs.events.outbox import enqueue
from crm_libs.pagination import PageParams, keyset
from crm_libs.principal import Principal
from crm_libs.problems import Conflict, NotFound
from engagement_service.member_events.events import event_cancelled, event_scheduled
from engagement_service.member_events.models import CANCELLED, SCHEDULED, StoreEvent
from engagement_service.member_events.schemas import EventCounts, EventCreate

_COUNTS_SQL = text(
    """
    SELECT i.invited, i.replied_yes, i.replied_no, i.replied_maybe,
           c.checked_in, c.walk_ins, c.guests
    FROM (SELECT count(*) FILTER (WHERE NOT walk_in) AS invited,
                 count(*) FILTER (WHERE reply = 'yes') AS replied_yes,
                 count(*) FILTER (WHERE reply = 'no') AS replied_no,
                 count(*) FILTER (WHERE reply = 'maybe') AS replied_maybe
          FROM event_invitation WHERE event_id = :event_id) AS i,
         (SELECT count(*) AS checked_in, count(*) FILTER (WHERE walk_in) AS walk_ins,
                 COALESCE(sum(guests), 0) AS guests
          FROM event_checkin WHERE event_id = :event_id) AS c
    """
)


async def schedule(
    session: AsyncSession, *, principal: Principal, event_in: EventCreate, now: datetime
) -> StoreEvent:
    """A new event in the caller's store (the store is checked by the router), announced."""
    principal.require_store(event_in.store_id, what="store")
    event = StoreEvent(
        store_id=event_in.store_id,
        kind=event_in.kind.value,
        title=event_in.title,
        starts_at=event_in.starts_at,
        place=event_in.place,
        capacity=event_in.capacity,
        status=SCHEDULED,
        created_by=principal.subject,
    )
    session.add(event)
    await session.flush()
    enqueue(session, topic=Topics.ENGAGEMENT, event=event_scheduled(event, at=now))
    return event


async def get(
    session: AsyncSession, *, principal: Principal, event_id: str, for_update: bool = False
) -> StoreEvent:
    """An event of the caller's store; another store's is as unknown as a missing one."""
    query = select(StoreEvent).where(col(StoreEvent.id) == event_id)
    if (scope := principal.store_scope()) is not None:
        query = query.where(col(StoreEvent.store_id) == scope)
    if for_update:
        query = query.with_for_update()
    event = (await session.execute(query)).scalar_one_or_none()
    if event is None:
        raise NotFound("No such event")
    return event


async def get_open(session: AsyncSession, *, principal: Principal, event_id: str) -> StoreEvent:
    """An event still taking invitations, replies and check-ins, locked: its people are counted
    against its capacity one writer at a time."""
    event = await get(session, principal=principal, event_id=event_id, for_update=True)
    if event.status == CANCELLED:
        raise Conflict("The event was cancelled")
    return event


async def counts(session: AsyncSession, *, event: StoreEvent) -> EventCounts:
    row = (await session.execute(_COUNTS_SQL, {"event_id": event.id})).one()
    return EventCounts(
        invited=row.invited,
        replied_yes=row.replied_yes,
        replied_no=row.replied_no,
        replied_maybe=row.replied_maybe,
        checked_in=row.checked_in,
        walk_ins=row.walk_ins,
        guests=row.guests,
        places_left=max(0, event.capacity - row.checked_in - row.guests),
    )


async def list_events(
    session: AsyncSession,
    *,
    principal: Principal,
    page: PageParams,
    store_id: str | None = None,
    status: str | None = None,
) -> list[StoreEvent]:
    """A page of a store's events in id order (head office: any store's, or every store's)."""
    if store_id is not None:
        principal.require_store(store_id, what="store")
    scope = principal.store_scope() or store_id
    query = keyset(select(StoreEvent), col(StoreEvent.id), page)
    if scope is not None:
        query = query.where(col(StoreEvent.store_id) == scope)
    if status is not None:
        query = query.where(col(StoreEvent.status) == status)
    return list((await session.execute(query)).scalars())


async def cancel(
    session: AsyncSession, *, principal: Principal, event_id: str, now: datetime
) -> StoreEvent:
    """Cancel an event for good and announce it; cancelling it again changes nothing."""
    event = await get(session, principal=principal, event_id=event_id, for_update=True)
    if event.status == CANCELLED:
        return event
    event.status = CANCELLED
    event.cancelled_at = now
    session.add(event)
    await session.flush()
    enqueue(session, topic=Topics.ENGAGEMENT, event=event_cancelled(event, at=now))
    return event
