"""The daily job: at each store's local midnight, staff members inactive for six months are
departed as ``inactive`` (DOMAIN.md §9), and their files move as any departure's do.

Inactive, as far as the customer service can know: a serving staff member (role ``staff``;
managers and experts are not measured by sales) on the roster for six months (since
``hired_on``, or the roster entry's creation when no hiring date is known) without a sale
(``purchase.staff_id``) in the last six months. Visits and calls are engagement's and do not
reach this service with their staff member, so a staff member who only visits is counted
quiet; a sale is what keeps a serving staff member active here.

The shape is the other daily jobs' (membership/expiry.py, scoring's ageing): one replica leads
a run (a PostgreSQL advisory lock held for the run), each store in a transaction of its own
under a per-store lock, and the local day it was for (``staff_inactivity_day``) written in that
transaction, so a restart, a second replica or a new leader never runs a store twice a day.
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_libs.leader import database_url_of, leader_lock
from customer_service.ownership import departure, rules

log = logging.getLogger(__name__)

# Unique among this database's one-bigint advisory locks (membership/expiry.py's 72_808_001).
INACTIVITY_LOCK = 72_809_001
# Who the history names for the job's departures.
BY_JOB = "system:inactivity"

# Stores with serving staff on the roster, their zone and the day they were last checked.
_STORES = text(
    """
    SELECT s.id AS store_id, s.timezone, d.checked_on
    FROM store AS s LEFT JOIN staff_inactivity_day AS d ON d.store_id = s.id
    WHERE EXISTS (SELECT 1 FROM staff AS st
                  WHERE st.store_id = s.id AND st.status = 'active' AND st.role = 'staff')
    """
)
_STORE_LOCK = text("SELECT pg_advisory_xact_lock(CAST(:lock AS integer), hashtext(:store_id))")
_CHECKED_ON = text("SELECT checked_on FROM staff_inactivity_day WHERE store_id = :store_id")
_MARK = text(
    """
    INSERT INTO staff_inactivity_day (store_id, checked_on, checked_at)
    VALUES (:store_id, :today, now())
    ON CONFLICT (store_id) DO UPDATE SET checked_on = excluded.checked_on,
                                         checked_at = excluded.checked_at
    """
)
# Serving staff on the roster since ``cutoff`` or before, with no sale after it (store-local
# days). The store's sales are read once, by the index that leads with the store.
_QUIET = text(
    """
    WITH last_sale AS (
        SELECT staff_id, max(purchased_at) AS at FROM purchase
        WHERE store_id = :store_id AND staff_id IS NOT NULL GROUP BY staff_id
    )
    SELECT st.id FROM staff AS st LEFT JOIN last_sale AS l ON l.staff_id = st.id
    WHERE st.store_id = :store_id AND st.status = 'active' AND st.role = 'staff'
      AND COALESCE(st.hired_on, CAST(timezone(:tz, st.created_at) AS date)) <= :cutoff
      AND (l.at IS NULL OR CAST(timezone(:tz, l.at) AS date) <= :cutoff)
    ORDER BY st.id
    """
)


@dataclass(frozen=True, slots=True)
class StoreDay:
    store_id: str
    timezone: str
    today: date


async def stores_due(session: AsyncSession, *, now: datetime) -> list[StoreDay]:
    """The stores whose local day has moved on since their last check."""
    due = []
    for row in await session.execute(_STORES):
        try:
            today = now.astimezone(ZoneInfo(row.timezone)).date()
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("store time zone unknown", extra={"fields": {"store_id": row.store_id}})
            continue
        if row.checked_on is None or row.checked_on < today:
            due.append(StoreDay(row.store_id, row.timezone, today))
    return due


async def depart_quiet_staff(session: AsyncSession, *, store: StoreDay) -> list[str] | None:
    """Depart the store's staff quiet for six months by its local day; their ids, or None if the
    store was checked for that day already. The caller commits."""
    await session.execute(_STORE_LOCK, {"lock": INACTIVITY_LOCK, "store_id": store.store_id})
    checked = (
        await session.execute(_CHECKED_ON, {"store_id": store.store_id})
    ).scalar_one_or_none()
    if checked is not None and checked >= store.today:
        return None
    cutoff = rules.add_months(store.today, -rules.INACTIVE_MONTHS)
    quiet = list(
        (
            await session.execute(
                _QUIET, {"store_id": store.store_id, "tz": store.timezone, "cutoff": cutoff}
            )
        ).scalars()
    )
    for staff_id in quiet:
        await departure.depart(
            session,
            staff_id=staff_id,
            reason="inactive",
            by=BY_JOB,
            note=f"no sale since {cutoff.isoformat()} or before",
        )
    await session.execute(_MARK, {"store_id": store.store_id, "today": store.today})
    return quiet


async def run_due_stores(
    sessionmaker: async_sessionmaker[AsyncSession], *, now: datetime | None = None
) -> dict[str, list[str]]:
    """Check every store past its local midnight, each in its own transaction."""
    now = now or datetime.now(UTC)
    async with sessionmaker() as session:
        due = await stores_due(session, now=now)
    departed = {}
    for store in due:
        async with sessionmaker() as session, session.begin():
            quiet = await depart_quiet_staff(session, store=store)
        if quiet:
            departed[store.store_id] = quiet
    return departed


async def run_as_leader(
    sessionmaker: async_sessionmaker[AsyncSession], *, now: datetime | None = None
) -> dict[str, list[str]] | None:
    """:func:`run_due_stores` if no other replica is running it; None when another leads."""
    async with leader_lock(database_url_of(sessionmaker), INACTIVITY_LOCK) as leading:
        if not leading:
            return None
        return await run_due_stores(sessionmaker, now=now)


async def staff_inactivity_worker(app: FastAPI) -> None:
    """Every ``staff_inactivity_check_seconds``, check the stores past their local midnight
    (first at start-up: a replica started after midnight checks at once)."""
    settings = app.state.settings
    while True:
        departed = await run_as_leader(app.state.sessionmaker)
        if departed:
            log.info(
                "inactive staff departed",
                extra={
                    "fields": {
                        "stores": len(departed),
                        "staff": sum(len(v) for v in departed.values()),
                    }
                },
            )
        await asyncio.sleep(settings.staff_inactivity_check_seconds)
