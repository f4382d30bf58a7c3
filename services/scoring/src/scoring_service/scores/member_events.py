"""The stores' upcoming member events, as ``crm.engagement.v1`` announces them, and the one to
invite a customer to before their supply runs out.

``event.scheduled`` (again for a new time or title) and ``event.cancelled`` (deploy/README.md)
are stored one row per member event. A schedule is applied only when its envelope is newer than
the one held, so a redelivery or a replay of an older one changes nothing; a cancellation is
final (a schedule delivered again after it does not bring the event back), and one that arrives
before its schedule is kept and wins when the schedule comes.

The event named on a score (:func:`next_event`) is the earliest one of the customer's store
that has not started yet and falls on or before ``next_purchase_on`` in the store's time zone:
invited then, the customer buys at or after the event rather than elsewhere. Nothing is named
when the supply has already run out or is unknown (a prospect): the rule says "before the
expected date", and there is none ahead.
"""

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

import asyncpg


class Scheduled(NamedTuple):
    """An ``event.scheduled``: the member event, its store, when it starts, its title, and the
    envelope's time (which of two schedules of one event is newer)."""

    event_id: str
    store_id: str
    starts_at: datetime
    title: str | None
    announced_at: datetime


class Cancelled(NamedTuple):
    """An ``event.cancelled``."""

    event_id: str
    store_id: str
    cancelled_at: datetime


class NextEvent(NamedTuple):
    event_id: str
    starts_at: datetime
    title: str | None


_SCHEDULE_SQL = """
    INSERT INTO member_event (event_id, store_id, starts_at, title, scheduled_at)
    SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[],
                         $5::timestamptz[])
    ON CONFLICT (event_id) DO UPDATE SET
        store_id = excluded.store_id, starts_at = excluded.starts_at, title = excluded.title,
        scheduled_at = excluded.scheduled_at
    WHERE member_event.scheduled_at IS NULL OR member_event.scheduled_at < excluded.scheduled_at
"""

_CANCEL_SQL = """
    INSERT INTO member_event (event_id, store_id, cancelled_at)
    SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])
    ON CONFLICT (event_id) DO UPDATE SET
        cancelled_at = COALESCE(member_event.cancelled_at, excluded.cancelled_at)
"""

# $1 store, $2 now, $3 the end of the last day allowed (exclusive). The index's range.
_NEXT_EVENT_SQL = """
    SELECT event_id, starts_at, title FROM member_event
    WHERE store_id = $1 AND starts_at >= $2 AND starts_at < $3 AND cancelled_at IS NULL
    ORDER BY starts_at, event_id
    LIMIT 1
"""


def _newest(events: Sequence[Scheduled]) -> list[Scheduled]:
    """One schedule per member event (the newest): an upsert may touch a row once."""
    newest: dict[str, Scheduled] = {}
    for e in events:
        held = newest.get(e.event_id)
        if held is None or e.announced_at > held.announced_at:
            newest[e.event_id] = e
    return list(newest.values())


async def store_member_events(
    db: asyncpg.Connection,
    *,
    scheduled: Sequence[Scheduled],
    cancelled: Sequence[Cancelled],
) -> None:
    """Apply a batch's schedules (newest per event wins) and cancellations (final)."""
    if scheduled:
        given = _newest(scheduled)
        await db.execute(
            _SCHEDULE_SQL,
            [e.event_id for e in given],
            [e.store_id for e in given],
            [e.starts_at for e in given],
            [e.title for e in given],
            [e.announced_at for e in given],
        )
    if cancelled:
        first = {c.event_id: c for c in reversed(cancelled)}.values()
        await db.execute(
            _CANCEL_SQL,
            [c.event_id for c in first],
            [c.store_id for c in first],
            [c.cancelled_at for c in first],
        )


def invitation_window(
    *, now: datetime, next_purchase_on: date | None, timezone: str
) -> tuple[datetime, datetime] | None:
    """[now, end of ``next_purchase_on`` in the store's zone): when an event to invite to may
    start; None when there is no expected date ahead (unknown, or the supply ran out)."""
    if next_purchase_on is None:
        return None
    end = datetime.combine(next_purchase_on + timedelta(days=1), time.min, ZoneInfo(timezone))
    if end <= now:
        return None
    return now, end


async def next_event(
    db: asyncpg.Connection,
    *,
    store_id: str,
    now: datetime,
    next_purchase_on: date | None,
    timezone: str,
) -> NextEvent | None:
    """The store's earliest member event not yet started and on or before the expected date."""
    window = invitation_window(now=now, next_purchase_on=next_purchase_on, timezone=timezone)
    if window is None:
        return None
    row = await db.fetchrow(_NEXT_EVENT_SQL, store_id, *window)
    return None if row is None else NextEvent(row[0], row[1], row[2])
