"""Scheduled work: scores change as days pass even in a store where nobody buys.

Two jobs, each run by one replica at a time (the leader of the job holds a PostgreSQL advisory
lock for the run), each store in a transaction of its own under the same per-store lock the
consumers take to re-rank it (:func:`service.lock_stores`), so a long run never holds a store
for long and never writes back spend older than a purchase committed meanwhile:

- the window refresh: purchases age out of the trailing 365 days (hourly);
- the daily ageing: at each store's local midnight every customer of the store ages a day —
  the window and the pyramid, then lifecycle, ladder, loyalty and RFM (:func:`classify_store`),
  and the store's product transitions are computed again (``next_purchase``).
  A store's ageing and the day it was for (``store_ageing.aged_on``, the store-local day) are
  written in one transaction, checked again under the store's lock, so a restart, a second
  replica or a leader taking over mid-run never ages a store twice for one day.

The clock is the service's: now, or the end of ``Settings.as_of`` (UTC) when it is pinned —
historical replays, and tests that move it.
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_libs.events.driver import driver_connection
from crm_libs.leader import database_url_of, leader_lock
from scoring_service.scores import expected_dates, history, service
from scoring_service.scores.classify import classify_store
from scoring_service.scores.next_purchase import refresh_transitions

log = logging.getLogger(__name__)

# Any constants unique among this database's advisory locks (one-bigint space; the per-store
# locks use the two-int space).
WINDOW_REFRESH_LOCK = 72_365_001
AGEING_LOCK = 72_365_003

_STORES_SQL = text("SELECT DISTINCT store_id FROM customer_score WHERE purchase_count > 0")

# Every store scoring holds customers of, the time zone of one of them (a store's customers
# have their store's) and the local day it was last aged: a loose scan of the (store_id,
# customer_id) index, one probe per store, so the check costs the number of stores, not of
# customers.
_STORE_DAYS_SQL = """
    WITH RECURSIVE stores AS (
        (SELECT store_id FROM customer_score ORDER BY store_id LIMIT 1)
        UNION ALL
        SELECT (SELECT cs.store_id FROM customer_score AS cs
                WHERE cs.store_id > s.store_id ORDER BY cs.store_id LIMIT 1)
        FROM stores AS s WHERE s.store_id IS NOT NULL
    )
    SELECT s.store_id,
           (SELECT cs.timezone FROM customer_score AS cs
            WHERE cs.store_id = s.store_id LIMIT 1) AS timezone,
           a.aged_on
    FROM stores AS s LEFT JOIN store_ageing AS a USING (store_id)
    WHERE s.store_id IS NOT NULL
"""
_AGED_ON_SQL = "SELECT aged_on FROM store_ageing WHERE store_id = $1"
_MARK_AGED_SQL = """
    INSERT INTO store_ageing (store_id, aged_on, aged_at) VALUES ($1, $2, now())
    ON CONFLICT (store_id) DO UPDATE SET aged_on = excluded.aged_on, aged_at = excluded.aged_at
"""


async def refresh_all_stores(
    sessionmaker: async_sessionmaker[AsyncSession], *, as_of: date | None = None
) -> int:
    """Re-window and re-rank every store; returns how many tiers moved."""
    async with sessionmaker() as session:
        stores = list((await session.execute(_STORES_SQL)).scalars())
    moved = 0
    for store_id in stores:
        async with sessionmaker() as session, session.begin():
            moved += await service.refresh_windows(session, store_id=store_id, as_of=as_of)
    return moved


async def refresh_as_leader(
    sessionmaker: async_sessionmaker[AsyncSession], *, as_of: date | None = None
) -> int | None:
    """Run :func:`refresh_all_stores` if no other replica is; None when another one leads."""
    async with leader_lock(database_url_of(sessionmaker), WINDOW_REFRESH_LOCK) as leading:
        if not leading:
            return None
        return await refresh_all_stores(sessionmaker, as_of=as_of)


async def window_refresh_worker(app: FastAPI) -> None:
    """Refresh the windows every ``window_refresh_seconds`` (dates move one day at a time)."""
    settings = app.state.settings
    while True:
        await asyncio.sleep(settings.window_refresh_seconds)
        moved = await refresh_as_leader(app.state.sessionmaker, as_of=settings.as_of)
        if moved is not None:
            log.info("trailing windows refreshed", extra={"fields": {"tiers_moved": moved}})


@dataclass(frozen=True, slots=True)
class StoreDay:
    """A store due for ageing: the local day it has reached."""

    store_id: str
    today: date


async def stores_due(session: AsyncSession, *, as_of: date | None = None) -> list[StoreDay]:
    """The stores whose local day has moved on since they were last aged."""
    now, _ = service.window_start(as_of)
    rows = await (await driver_connection(session)).fetch(_STORE_DAYS_SQL)
    due = []
    for row in rows:
        try:
            today = now.astimezone(ZoneInfo(row["timezone"])).date()
        except (ZoneInfoNotFoundError, ValueError):
            # The customer service validates a store's zone; one it did not is skipped, loudly,
            # rather than stopping every other store's ageing.
            log.warning("store time zone unknown", extra={"fields": dict(row)})
            continue
        if row["aged_on"] is None or row["aged_on"] < today:
            due.append(StoreDay(row["store_id"], today))
    return due


async def age_store(
    session: AsyncSession, *, store_id: str, today: date, as_of: date | None = None
) -> int | None:
    """Age one store to its local day ``today``: the window and the pyramid, then every
    classification, and the day recorded; how many changes were published, or None if the
    store was aged for that day already. The caller commits."""
    db = await driver_connection(session)
    await service.lock_stores(session, store_ids=[store_id])
    aged_on = await db.fetchval(_AGED_ON_SQL, store_id)
    if aged_on is not None and aged_on >= today:
        return None
    await history.declare_cause(db, cause=history.AGEING)
    now, _ = service.window_start(as_of)
    # First: an event whose day has passed no longer sets the expected date, and what the rest
    # publishes carries the dates stored.
    moved_dates = await expected_dates.publish_moved_dates(
        db, now=now, cause=history.AGEING, store_ids=[store_id]
    )
    moved = await service.refresh_windows(session, store_id=store_id, as_of=as_of)
    classified = await classify_store(db, store_id=store_id, now=now, cause=history.AGEING)
    # The store's "after X, customers bought Y" for the next product, once a day with the rest.
    await refresh_transitions(db, store_id=store_id, now=now)
    await db.execute(_MARK_AGED_SQL, store_id, today)
    return moved_dates + moved + classified


async def age_due_stores(
    sessionmaker: async_sessionmaker[AsyncSession], *, as_of: date | None = None
) -> dict[str, int]:
    """Age every store whose local day has moved on, each in its own transaction; returns the
    changes published per store aged."""
    async with sessionmaker() as session:
        due = await stores_due(session, as_of=as_of)
    aged = {}
    for store in due:
        async with sessionmaker() as session, session.begin():
            changes = await age_store(
                session, store_id=store.store_id, today=store.today, as_of=as_of
            )
        if changes is not None:
            aged[store.store_id] = changes
    return aged


async def age_as_leader(
    sessionmaker: async_sessionmaker[AsyncSession], *, as_of: date | None = None
) -> dict[str, int] | None:
    """Run :func:`age_due_stores` if no other replica is; None when another one leads."""
    async with leader_lock(database_url_of(sessionmaker), AGEING_LOCK) as leading:
        if not leading:
            return None
        return await age_due_stores(sessionmaker, as_of=as_of)


async def ageing_worker(app: FastAPI) -> None:
    """Every ``ageing_check_seconds``, age the stores that have passed their local midnight
    (first at start-up: a replica started after midnight ages at once)."""
    settings = app.state.settings
    while True:
        aged = await age_as_leader(app.state.sessionmaker, as_of=settings.as_of)
        if aged:
            log.info(
                "stores aged",
                extra={"fields": {"stores": len(aged), "changes": sum(aged.values())}},
            )
        await asyncio.sleep(settings.ageing_check_seconds)
