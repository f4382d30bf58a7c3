"""The month summary's marks folded in the background.

Every writing transaction leaves a mark per store and month it touched (analysis/
month_summary.py), and a read of a store's consumption takes them; a store whose manager never
opens the analysis would keep them all. So every ``analysis_fold_seconds`` one replica (the
leader of the job, as for the window refresh and the ageing) recomputes the marked months of
every marked store with the route's own :func:`month_summary.refresh`, store by store, each in
a transaction of its own: the store's advisory lock is held for one store's months only, and a
reader or writer of another store never waits on the run.

A run folds at most ``analysis_fold_max_stores`` stores, in store order from where the
previous run stopped (from the first store again once a run reaches the last), so a backlog is
spread over runs and every store has its turn. The marked stores are found by a loose scan of
the marks' primary key, one probe per store, not a read of every mark.
"""

import asyncio
import logging
import time
from dataclasses import dataclass

import asyncpg
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_libs.events.driver import driver_connection
from crm_libs.leader import database_url_of, leader_lock
from scoring_service.analysis import month_summary

log = logging.getLogger(__name__)

# Unique among this database's one-bigint advisory locks (scores/scheduled.py's 72_365_001 and
# 72_365_003, scores/fits_scheduled.py's 72_365_060).
FOLD_LOCK = 72_365_013

# The stores with a mark after $1, in order, at most $2: each next one found by one probe of
# (store_id, month, xid); the outer LIMIT stops the recursion.
_MARKED_STORES_SQL = """
    WITH RECURSIVE marked AS (
        (SELECT store_id FROM analysis_dirty_month WHERE store_id > $1
         ORDER BY store_id LIMIT 1)
        UNION ALL
        SELECT (SELECT d.store_id FROM analysis_dirty_month AS d
                WHERE d.store_id > m.store_id ORDER BY d.store_id LIMIT 1)
        FROM marked AS m WHERE m.store_id IS NOT NULL
    )
    SELECT store_id FROM marked WHERE store_id IS NOT NULL LIMIT $2
"""


@dataclass(frozen=True, slots=True)
class Folded:
    months: dict[str, int]  # per store folded, how many of its months were recomputed
    seconds: float
    after: str  # where the next run begins: after this store ("": from the first)


async def marked_stores(db: asyncpg.Connection, *, after: str, limit: int) -> list[str]:
    """The first ``limit`` stores with a mark, in order, after the store ``after``."""
    return [r["store_id"] for r in await db.fetch(_MARKED_STORES_SQL, after, limit)]


async def fold_marked_months(
    sessionmaker: async_sessionmaker[AsyncSession], *, max_stores: int, after: str = ""
) -> Folded:
    """Recompute the marked months of up to ``max_stores`` stores after ``after`` (which takes
    their marks), each store in its own transaction."""
    started = time.monotonic()
    async with sessionmaker() as session:
        db = await driver_connection(session)
        stores = await marked_stores(db, after=after, limit=max_stores)
    months = {}
    for store_id in stores:
        async with sessionmaker() as session, session.begin():
            db = await driver_connection(session)
            months[store_id] = await month_summary.refresh(db, store_id=store_id)
    # A run that found fewer than it may fold has reached the last store.
    following = stores[-1] if len(stores) == max_stores else ""
    return Folded(months, time.monotonic() - started, following)


async def fold_as_leader(
    sessionmaker: async_sessionmaker[AsyncSession], *, max_stores: int, after: str = ""
) -> Folded | None:
    """Run :func:`fold_marked_months` unless another replica is; None when another one leads."""
    async with leader_lock(database_url_of(sessionmaker), FOLD_LOCK) as leading:
        if not leading:
            return None
        return await fold_marked_months(sessionmaker, max_stores=max_stores, after=after)


async def month_summary_fold_worker(app: FastAPI) -> None:
    """Every ``analysis_fold_seconds``, fold the marks of up to ``analysis_fold_max_stores``
    stores, going on from the previous run's last (a restarted worker begins again at the
    first: at worst some stores wait one run longer)."""
    settings = app.state.settings
    after = ""
    while True:
        await asyncio.sleep(settings.analysis_fold_seconds)
        folded = await fold_as_leader(
            app.state.sessionmaker, max_stores=settings.analysis_fold_max_stores, after=after
        )
        if folded is None:
            continue
        after = folded.after
        if folded.months:
            fields = {
                "stores": len(folded.months),
                "months": sum(folded.months.values()),
                "seconds": round(folded.seconds, 3),
            }
            log.info("month summary marks folded", extra={"fields": fields})
