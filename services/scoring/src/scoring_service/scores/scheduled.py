"""Scheduled work: purchases age out of the trailing window even in a store where nobody buys.

One replica at a time does it: the leader holds a PostgreSQL advisory lock for the run; each
store is refreshed in a transaction of its own, under the same per-store lock the consumers take
to re-rank it (:func:`service.lock_stores`), so a long run never holds a store for long and never
writes back spend older than a purchase committed meanwhile.
"""

import asyncio
import logging
from datetime import date

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from scoring_service.scores import service

log = logging.getLogger(__name__)

# Any constant unique among this database's advisory locks.
WINDOW_REFRESH_LOCK = 72_365_001

_STORES_SQL = text("SELECT DISTINCT store_id FROM customer_score WHERE purchase_count > 0")


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
    async with sessionmaker() as leader:
        got = (
            await leader.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": WINDOW_REFRESH_LOCK}
            )
        ).scalar_one()
        if not got:
            return None
        try:
            return await refresh_all_stores(sessionmaker, as_of=as_of)
        finally:
            await leader.execute(
                text("SELECT pg_advisory_unlock(:key)"), {"key": WINDOW_REFRESH_LOCK}
            )
            await leader.commit()


async def window_refresh_worker(app: FastAPI) -> None:
    """Refresh the windows every ``window_refresh_seconds`` (dates move one day at a time)."""
    settings = app.state.settings
    while True:
        await asyncio.sleep(settings.window_refresh_seconds)
        moved = await refresh_as_leader(app.state.sessionmaker, as_of=settings.as_of)
        if moved is not None:
            log.info("trailing windows refreshed", extra={"fields": {"tiers_moved": moved}})
