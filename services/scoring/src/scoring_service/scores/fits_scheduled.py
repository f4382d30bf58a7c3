"""Scheduled refits: every store's models as of yesterday, and the pooled fit, once a day.

One replica at a time (the leader holds a PostgreSQL advisory lock for the run, as the window
refresh does). One summary of every store's customers is read, the pooled fit made from all
of it and each store's own fit from its part, each kept with its date, sample size and
log-likelihood. A store with too few repeat customers gets no fit of its own: its predictions
use the pooled one (``fits.newest_fit``).
"""

import asyncio
import logging
from datetime import UTC, date, datetime, timedelta

import numpy as np
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_libs.leader import database_url_of, leader_lock
from scoring_service.scores import fits
from scoring_service.scores.btyd.bgnbd import FitFailed
from scoring_service.scores.btyd.summary import Summary, TimeUnit

log = logging.getLogger(__name__)

# Any constant unique among this database's advisory locks (see scheduled.WINDOW_REFRESH_LOCK).
MODEL_REFIT_LOCK = 72_365_060


def calibration_end_for(as_of: date | None) -> date:
    """The replay's ``as_of`` day, else yesterday (UTC): a day whose purchases are all in,
    in the stores east of UTC at least, where the default time zone is."""
    return as_of if as_of is not None else datetime.now(UTC).date() - timedelta(days=1)


async def refit_all(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    calibration_end: date,
    min_repeat_customers: int,
    time_unit: TimeUnit = "week",
) -> dict[str | None, str]:
    """Fit the pool and every store with enough repeat customers; returns each kept fit's id
    by store (None: the pooled fit)."""
    async with sessionmaker() as session, session.begin():
        everyone = await fits.summarise(
            session, store_id=None, calibration_end=calibration_end, time_unit=time_unit
        )
    stores = [str(s) for s in np.unique(everyone.store_ids)] if len(everyone.summary) else []
    kept: dict[str | None, str] = {}
    parts: list[tuple[str | None, Summary]] = [(None, everyone.summary)]
    parts += [(store, everyone.of_store(store)) for store in stores]
    for store_id, summary in parts:
        if summary.repeat_customers < min_repeat_customers:
            continue
        try:
            fitted = await asyncio.to_thread(fits.fit_summary, summary)
        except FitFailed:
            log.warning("model fit failed", extra={"fields": {"store_id": store_id}})
            continue
        async with sessionmaker() as session, session.begin():
            row = await fits.store_fit(
                session,
                fitted,
                store_id=store_id,
                calibration_end=calibration_end,
                time_unit=time_unit,
            )
            kept[store_id] = row.id
    return kept


async def refit_as_leader(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    calibration_end: date,
    min_repeat_customers: int,
) -> dict[str | None, str] | None:
    """Run :func:`refit_all` unless another replica is; None when another one leads."""
    async with leader_lock(database_url_of(sessionmaker), MODEL_REFIT_LOCK) as leading:
        if not leading:
            return None
        return await refit_all(
            sessionmaker,
            calibration_end=calibration_end,
            min_repeat_customers=min_repeat_customers,
        )


# Every run keeps a pooled fit (when there is enough data for any fit): fits asked for through
# the API are a store's own and do not put the next run off.
_LAST_FIT_SQL = text("SELECT max(fitted_at) FROM model_fit WHERE store_id IS NULL")
# How often a replica looks whether a refit is due: a restart neither refits at once (replicas
# restarting would each add fits) nor waits a whole interval before the first fit.
REFIT_POLL_SECONDS = 3600.0


async def refit_due(sessionmaker: async_sessionmaker[AsyncSession], *, interval: float) -> bool:
    """Whether the newest pooled fit is older than ``interval`` seconds, or none is kept yet."""
    async with sessionmaker() as session:
        last = (await session.execute(_LAST_FIT_SQL)).scalar()
    return last is None or datetime.now(UTC) - last > timedelta(seconds=interval)


async def model_refit_worker(app: FastAPI) -> None:
    """Refit every ``model_refit_seconds`` (a day by default), checking hourly whether due."""
    settings = app.state.settings
    while True:
        await asyncio.sleep(min(REFIT_POLL_SECONDS, settings.model_refit_seconds))
        if not await refit_due(app.state.sessionmaker, interval=settings.model_refit_seconds):
            continue
        kept = await refit_as_leader(
            app.state.sessionmaker,
            calibration_end=calibration_end_for(settings.as_of),
            min_repeat_customers=settings.model_min_repeat_customers,
        )
        if kept is not None:
            log.info("models refitted", extra={"fields": {"fits": len(kept)}})
