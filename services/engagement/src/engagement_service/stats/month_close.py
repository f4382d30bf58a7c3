"""``staff.month_closed`` on ``crm.engagement.v1``: each staff member's follow-up completion over
last month, for DOMAIN.md §9's reassignment (files from the pool go to staff above 80 %).

At each store's local month start, the month that just ended is closed once per store: every
staff member with a task due in it (stats/service.py's counts, the month's tasks all past due
by then) gets one event, written to the outbox in the transaction that records the month in
``staff_month_closed`` (one row per store, staff member and month), so a rerun, a restart or a
second replica publishes nothing twice. ``staff_month_run`` holds the last month closed per
store: the minute's check reads one row per store. One replica leads (care/daily.py).
"""

import logging
from datetime import UTC, date, datetime, timedelta

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_libs.events.driver import driver_connection
from crm_libs.events.envelope import EventEnvelope, Topics
from crm_libs.events.event_types import STAFF_MONTH_CLOSED
from crm_libs.events.outbox import enqueue_many
from engagement_service.care.daily import as_leader, check_every
from engagement_service.care.files import local_day
from engagement_service.config import Settings
from engagement_service.stats.service import StaffStats, staff_stats

log = logging.getLogger(__name__)

# Unique among this database's one-bigint advisory locks (care/scheduled.py's 72_365_201,
# care/routine.py's 72_365_202).
MONTH_CLOSE_LOCK = 72_365_301

# Every store with tasks (a loose scan of the task index that leads with the store), a time
# zone of one of its files, and the last month closed.
_STORES_SQL = """
    WITH RECURSIVE stores AS (
        (SELECT store_id FROM task ORDER BY store_id LIMIT 1)
        UNION ALL
        SELECT (SELECT t.store_id FROM task AS t WHERE t.store_id > s.store_id
                ORDER BY t.store_id LIMIT 1)
        FROM stores AS s WHERE s.store_id IS NOT NULL
    )
    SELECT s.store_id,
           (SELECT f.timezone FROM customer_file AS f
            WHERE f.store_id = s.store_id AND f.timezone IS NOT NULL LIMIT 1) AS timezone,
           r.closed_month
    FROM stores AS s LEFT JOIN staff_month_run AS r USING (store_id)
    WHERE s.store_id IS NOT NULL
"""
_CLOSED_SQL = "SELECT closed_month FROM staff_month_run WHERE store_id = $1 FOR UPDATE"
_RECORD_SQL = """
    INSERT INTO staff_month_closed (store_id, staff_id, month)
    SELECT $1, unnest($2::text[]), $3
    ON CONFLICT DO NOTHING
    RETURNING staff_id
"""
_MARK_SQL = """
    INSERT INTO staff_month_run (store_id, closed_month) VALUES ($1, $2)
    ON CONFLICT (store_id) DO UPDATE SET closed_month = excluded.closed_month, closed_at = now()
"""


def previous_month(today: date) -> tuple[date, date]:
    """The month before ``today``'s: its first and last day."""
    last = today.replace(day=1) - timedelta(days=1)
    return last.replace(day=1), last


def month_closed(stats: StaffStats, *, occurred_at: datetime) -> EventEnvelope:
    """The event of one staff member's month (topic ``Topics.ENGAGEMENT``); the envelope's
    ``customer_id`` carries the staff id (no customer is concerned; the partition key keeps a
    staff member's months in order)."""
    return EventEnvelope(
        type=STAFF_MONTH_CLOSED,
        occurred_at=occurred_at,
        store_id=stats.store_id,
        customer_id=stats.staff_id,
        payload={
            "staff_id": stats.staff_id,
            "store_id": stats.store_id,
            "month": stats.start.strftime("%Y-%m"),
            "tasks_due": stats.tasks_due,
            "done_on_time": stats.done_on_time,
            "done_late": stats.done_late,
            "overdue": stats.overdue,
            "completion_rate": stats.completion_rate,
        },
    )


async def close_due_months(
    sessionmaker: async_sessionmaker[AsyncSession], *, now: datetime, default_timezone: str
) -> dict[str, int]:
    """Close last month in every store past its local month start since its last close, each
    store in its own transaction; the events written per store closed."""
    async with sessionmaker() as session:
        rows = await (await driver_connection(session)).fetch(_STORES_SQL)
    closed: dict[str, int] = {}
    for row in rows:
        today = local_day(now, row["timezone"], default_timezone)
        first, last = previous_month(today)
        if row["closed_month"] is not None and row["closed_month"] >= first:
            continue
        async with sessionmaker() as session, session.begin():
            db = await driver_connection(session)
            held = await db.fetchval(_CLOSED_SQL, row["store_id"])
            if held is not None and held >= first:
                continue  # another run got there first
            found = [
                s
                for s in await staff_stats(
                    session,
                    store_id=row["store_id"],
                    start=first,
                    end=last,
                    today=today,
                    timezone=row["timezone"] or default_timezone,
                )
                if s.tasks_due
            ]
            recorded = {
                r["staff_id"]
                for r in await db.fetch(
                    _RECORD_SQL, row["store_id"], [s.staff_id for s in found], first
                )
            }
            events = [month_closed(s, occurred_at=now) for s in found if s.staff_id in recorded]
            await enqueue_many(session, topic=Topics.ENGAGEMENT, events=events)
            await db.execute(_MARK_SQL, row["store_id"], first)
            closed[row["store_id"]] = len(events)
    return closed


async def close_as_leader(
    sessionmaker: async_sessionmaker[AsyncSession], *, now: datetime, default_timezone: str
) -> dict[str, int] | None:
    """Run :func:`close_due_months` if no other replica is; None when another one leads."""
    return await as_leader(
        sessionmaker,
        lock=MONTH_CLOSE_LOCK,
        run=lambda: close_due_months(sessionmaker, now=now, default_timezone=default_timezone),
    )


async def staff_month_worker(app: FastAPI) -> None:
    """Every ``staff_month_check_seconds``, close last month in the stores past their month
    start."""
    settings: Settings = app.state.settings

    async def check() -> None:
        closed = await close_as_leader(
            app.state.sessionmaker,
            now=datetime.now(UTC),
            default_timezone=settings.default_timezone,
        )
        if closed:
            log.info(
                "staff months closed",
                extra={"fields": {"stores": len(closed), "events": sum(closed.values())}},
            )

    await check_every(settings.staff_month_check_seconds, check)
