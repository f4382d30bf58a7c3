"""Routine care (DOMAIN.md §4): after a plan's last phase (``customer_care``), ``routine``
calls and home visits at the frequency the expected next purchase asks.

The band is the month of ``expected_purchase_on`` (``score.changed``) against the store's
today: this calendar month (a date already passed too: the purchase is due now), the next,
the one after, or later (or no date known):

| band | calls every | home visits every |
|---|---|---|
| this month | 2 days | 7 days |
| 2 months | 3 days | 7 days |
| 3 months | 7 days | 14 days |
| later | 14 days | 14 days (the table's monthly, raised by the baseline) |

The baseline, two home visits and two to five calls a month for every routine customer, is a
floor: nothing is rarer than every 14 days, which puts at least two in any calendar month
(28 to 31 days). The table's higher frequencies are the point of the bands, so five is no cap.

Days are counted from the day the customer moved to routine care (``routine_since``): a call
falls on each multiple of its interval after it, and a visit on each multiple of its own after
the third day (:data:`VISIT_OFFSET_DAYS`), so that where the intervals allow, a visit and a call
never share a day; a call that still falls on a visit's day is not made (the visit is that
day's contact). So the days are the same at every run and a rerun finds them made.

Only a rolling horizon exists as rows: a daily job at each store's local midnight (one leader
by advisory lock, care/daily.py) plans today and the next ``routine_horizon_days - 1`` days,
and a ``score.changed`` that moves a routine customer's expected purchase plans that
customer's horizon again at once. Planning replaces: the open routine tasks from today on whose
day and method the band no longer asks for are closed as ``replanned``, and the days asked for
that have no task yet are created (a task rescheduled by the staff counts for the day it was
first due; one done counts as done). Past days are never touched.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_libs.events.driver import driver_connection
from crm_libs.ids import new_id
from engagement_service.care.daily import as_leader, check_every
from engagement_service.care.files import CareFile, local_day
from engagement_service.config import Settings
from engagement_service.customers.service import lock_stores
from engagement_service.followups.methods import Method
from engagement_service.scores.service import ScoreMoved

log = logging.getLogger(__name__)

ROUTINE = "routine"
REPLANNED = "replanned"
# Unique among this database's one-bigint advisory locks (care/scheduled.py's is 72_365_201).
ROUTINE_LOCK = 72_365_202


class Band(StrEnum):
    THIS_MONTH = "this_month"
    TWO_MONTHS = "two_months"
    THREE_MONTHS = "three_months"
    LATER = "later"


@dataclass(frozen=True, slots=True)
class Cadence:
    call_every_days: int
    home_every_days: int


# Visits are counted from this many days after routine care began (calls from the day itself).
VISIT_OFFSET_DAYS = 3
# No contact rarer than this: two in any calendar month (DOMAIN.md's baseline).
BASELINE_EVERY_DAYS = 14

CADENCE: dict[Band, Cadence] = {
    Band.THIS_MONTH: Cadence(call_every_days=2, home_every_days=7),
    Band.TWO_MONTHS: Cadence(call_every_days=3, home_every_days=7),
    Band.THREE_MONTHS: Cadence(call_every_days=7, home_every_days=14),
    Band.LATER: Cadence(call_every_days=14, home_every_days=30),
}

PURPOSE: dict[Method, str] = {
    Method.PHONE: "routine care call: how the customer is and how the product is going",
    Method.HOME: "routine home visit: health, use of the product, the family; invite to events",
}


def band_of(expected_purchase_on: date | None, *, today: date) -> Band:
    """The band of an expected purchase date seen on ``today``."""
    if expected_purchase_on is None:
        return Band.LATER
    months = (expected_purchase_on.year - today.year) * 12 + (
        expected_purchase_on.month - today.month
    )
    if months <= 0:
        return Band.THIS_MONTH
    return {1: Band.TWO_MONTHS, 2: Band.THREE_MONTHS}.get(months, Band.LATER)


def routine_days(*, since: date, band: Band, start: date, days: int) -> list[tuple[date, Method]]:
    """The calls and visits of ``band`` from ``start`` for ``days`` days, counted from
    ``since``."""
    cadence = CADENCE[band]
    calls = min(cadence.call_every_days, BASELINE_EVERY_DAYS)
    visits = min(cadence.home_every_days, BASELINE_EVERY_DAYS)
    wanted = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        n = (day - since).days
        if n <= 0:
            continue
        if n >= VISIT_OFFSET_DAYS and (n - VISIT_OFFSET_DAYS) % visits == 0:
            wanted.append((day, Method.HOME))
        elif n % calls == 0:
            wanted.append((day, Method.PHONE))
    return wanted


@dataclass(frozen=True, slots=True)
class RoutineCustomer:
    customer_id: str
    routine_since: date
    expected_purchase_on: date | None


# The store's active files in routine care, or those of them named ($2 null: all).
_CUSTOMERS_SQL = """
    SELECT c.customer_id, c.routine_since, s.expected_purchase_on
    FROM customer_care AS c
    JOIN customer_file AS f ON f.customer_id = c.customer_id AND f.status = 'active'
    LEFT JOIN customer_score_seen AS s ON s.customer_id = c.customer_id
    WHERE c.store_id = $1 AND ($2::text[] IS NULL OR c.customer_id = ANY($2::text[]))
"""

# $1 store, $2..$5 the wanted days (customer, day, method, new task id), $6 the customers
# planned, $7 today, $8 and $9 each method's purpose.
_PLAN_SQL = """
    WITH wanted AS (
        SELECT * FROM unnest($2::text[], $3::date[], $4::text[], $5::text[])
            AS w(customer_id, due_on, method, id)
    ), replaced AS (
        UPDATE task AS t SET status = 'closed', closed_reason = 'replanned'
        WHERE t.store_id = $1 AND t.customer_id = ANY($6::text[]) AND t.kind = 'routine'
          AND t.status = 'open' AND COALESCE(t.rescheduled_from, t.due_on) >= $7
          AND NOT EXISTS (SELECT 1 FROM wanted AS w
                          WHERE w.customer_id = t.customer_id AND w.method = t.method
                            AND w.due_on = COALESCE(t.rescheduled_from, t.due_on))
        RETURNING t.id
    )
    INSERT INTO task (id, store_id, customer_id, kind, due_on, method, purpose, status,
                      assignee_staff_id)
    SELECT w.id, $1, w.customer_id, 'routine', w.due_on, w.method, p.purpose, 'open',
           f.owner_staff_id
    FROM wanted AS w
    JOIN customer_file AS f
      ON f.customer_id = w.customer_id AND f.store_id = $1 AND f.status = 'active'
    JOIN unnest($8::text[], $9::text[]) AS p(method, purpose) ON p.method = w.method
    WHERE NOT EXISTS (SELECT 1 FROM task AS t
                      WHERE t.store_id = $1 AND t.customer_id = w.customer_id
                        AND t.kind = 'routine' AND t.method = w.method
                        AND COALESCE(t.rescheduled_from, t.due_on) = w.due_on
                        AND t.closed_reason IS DISTINCT FROM 'replanned')
"""


async def plan_customers(
    session: AsyncSession,
    *,
    store_id: str,
    today: date,
    horizon_days: int,
    customer_ids: list[str] | None = None,
) -> int:
    """Plan the store's routine customers (those named, or all) from ``today`` over the
    horizon; how many tasks were created. The caller holds the store's lock and commits."""
    db = await driver_connection(session)
    customers = [
        RoutineCustomer(*row) for row in await db.fetch(_CUSTOMERS_SQL, store_id, customer_ids)
    ]
    if not customers:
        return 0
    wanted = [
        (c.customer_id, day, method)
        for c in customers
        for day, method in routine_days(
            since=c.routine_since,
            band=band_of(c.expected_purchase_on, today=today),
            start=today,
            days=horizon_days,
        )
    ]
    status = await db.execute(
        _PLAN_SQL,
        store_id,
        [w[0] for w in wanted],
        [w[1] for w in wanted],
        [w[2].value for w in wanted],
        [new_id() for _ in wanted],
        [c.customer_id for c in customers],
        today,
        [m.value for m in PURPOSE],
        list(PURPOSE.values()),
    )
    return int(status.rsplit(" ", 1)[-1])  # "INSERT 0 n"


async def replan_moved(
    session: AsyncSession,
    *,
    moved: list[ScoreMoved],
    files: dict[str, CareFile],
    horizon_days: int,
) -> None:
    """Plan again the horizon of the customers whose expected purchase the batch moved (those
    not in routine care are skipped by the read)."""
    by_store: dict[tuple[str, date], list[str]] = {}
    for m in moved:
        if m.expected_moved and files[m.customer_id].active:
            f = files[m.customer_id]
            by_store.setdefault((f.store_id, f.today), []).append(m.customer_id)
    for (store_id, today), customer_ids in by_store.items():
        await plan_customers(
            session,
            store_id=store_id,
            today=today,
            horizon_days=horizon_days,
            customer_ids=customer_ids,
        )


# The stores with routine customers, a time zone of one of their files and their last run.
_STORES_SQL = """
    SELECT c.store_id,
           (SELECT f.timezone FROM customer_file AS f
            WHERE f.store_id = c.store_id AND f.timezone IS NOT NULL LIMIT 1) AS timezone,
           r.planned_on
    FROM (SELECT DISTINCT store_id FROM customer_care) AS c
    LEFT JOIN routine_run AS r USING (store_id)
"""
_PLANNED_ON_SQL = "SELECT planned_on FROM routine_run WHERE store_id = $1"
_MARK_SQL = """
    INSERT INTO routine_run (store_id, planned_on) VALUES ($1, $2)
    ON CONFLICT (store_id) DO UPDATE SET planned_on = excluded.planned_on, planned_at = now()
"""


async def plan_due_stores(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    now: datetime,
    horizon_days: int,
    default_timezone: str,
) -> dict[str, int]:
    """Plan every store whose local day has moved on since its last run, each in its own
    transaction under the store's lock; the tasks created per store planned."""
    async with sessionmaker() as session:
        rows = await (await driver_connection(session)).fetch(_STORES_SQL)
    planned = {}
    for row in rows:
        today = local_day(now, row["timezone"], default_timezone)
        if row["planned_on"] is not None and row["planned_on"] >= today:
            continue
        async with sessionmaker() as session, session.begin():
            await lock_stores(session, store_ids=[row["store_id"]])
            db = await driver_connection(session)
            last = await db.fetchval(_PLANNED_ON_SQL, row["store_id"])
            if last is not None and last >= today:
                continue  # another run got there first
            planned[row["store_id"]] = await plan_customers(
                session, store_id=row["store_id"], today=today, horizon_days=horizon_days
            )
            await db.execute(_MARK_SQL, row["store_id"], today)
    return planned


async def plan_as_leader(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    now: datetime,
    horizon_days: int,
    default_timezone: str,
) -> dict[str, int] | None:
    """Run :func:`plan_due_stores` if no other replica is; None when another one leads."""
    return await as_leader(
        sessionmaker,
        lock=ROUTINE_LOCK,
        run=lambda: plan_due_stores(
            sessionmaker, now=now, horizon_days=horizon_days, default_timezone=default_timezone
        ),
    )


async def routine_care_worker(app: FastAPI) -> None:
    """Every ``routine_check_seconds``, plan the stores that have passed their local midnight."""
    settings: Settings = app.state.settings

    async def check() -> None:
        planned = await plan_as_leader(
            app.state.sessionmaker,
            now=datetime.now(UTC),
            horizon_days=settings.routine_horizon_days,
            default_timezone=settings.default_timezone,
        )
        if planned:
            log.info(
                "routine care planned",
                extra={"fields": {"stores": len(planned), "tasks": sum(planned.values())}},
            )

    await check_every(settings.routine_check_seconds, check)
