"""A store's buy-till-you-die fit from its purchase facts, kept in ``model_fit``.

The per-customer summary comes from one SQL statement (each customer's days, their first and
last, the repeat days' spend, and the days after the calibration end for a holdout check); the
maths runs in numpy on the arrays it returns (``btyd``). A store with too few customers who came
back (``Settings.model_min_repeat_customers``) cannot be fitted on its own: its predictions use
the pooled fit over every store (``store_id`` null), and a fit says which it is (``scope``).
Fits are kept, never overwritten: a store's predictions use its fit of the latest calibration
end (the newest of those), so a holdout check on an older period does not replace the fit of
the latest data.
"""

import asyncio
from dataclasses import dataclass
from datetime import date
from typing import Literal

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.driver import driver_connection
from crm_libs.ids import new_id
from crm_libs.problems import ProblemError
from scoring_service.scores.btyd import bgnbd, gamma_gamma
from scoring_service.scores.btyd.bgnbd import FitFailed
from scoring_service.scores.btyd.summary import Summary, TimeUnit, in_units
from scoring_service.scores.models import ModelFit

Scope = Literal["store", "pooled"]

# $1 the store (null: every store), $2 the calibration end, $3 the last day read (the holdout's
# end, or the calibration end). A day's purchases count once, their totals summed: ``total`` is
# net of refunds, and a wholly refunded purchase is no transaction at all (a returned sale is no
# purchase for frequency, recency or age, nor in the holdout). The first day's spend is left out
# of the repeat spend (summary.py says why). Each column comes back as one array, decoded by the
# driver, so no Python object is built per customer.
_SUMMARY_SQL = """
    WITH days AS (
        SELECT customer_id, min(store_id) AS store_id, purchased_on AS day,
               SUM(total)::float8 AS spend
        FROM purchase_fact
        WHERE ($1::text IS NULL OR store_id = $1) AND purchased_on <= $3
          AND NOT wholly_refunded
        GROUP BY customer_id, purchased_on
    ), customers AS (
        SELECT min(store_id) AS store_id,
               count(*) FILTER (WHERE day <= $2) - 1 AS frequency,
               max(day) FILTER (WHERE day <= $2) - min(day) AS recency_days,
               $2::date - min(day) AS age_days,
               COALESCE(SUM(spend) FILTER (WHERE day <= $2), 0)
                   - (array_agg(spend ORDER BY day))[1] AS repeat_spend,
               count(*) FILTER (WHERE day > $2) AS holdout_days
        FROM days
        GROUP BY customer_id
        HAVING min(day) <= $2
    )
    SELECT array_agg(store_id), array_agg(frequency)::float8[], array_agg(recency_days)::float8[],
           array_agg(age_days)::float8[], array_agg(repeat_spend), array_agg(holdout_days)::float8[]
    FROM customers
"""

_NEWEST_SQL = text(
    """
    SELECT * FROM model_fit
    WHERE store_id = :store_id OR store_id IS NULL
    ORDER BY store_id IS NULL, calibration_end DESC, fitted_at DESC
    LIMIT 1
    """
)


class TooLittleData(ProblemError):
    """422: the store has too few customers with a repeat purchase for a fit of its own."""

    status = 422
    title = "Too little data for a model fit"

    def __init__(self, *, needed: int, found: int, calibration_end: date) -> None:
        message = (
            f"needs at least {needed} customers with a repeat purchase by {calibration_end}; "
            f"the store has {found}"
        )
        super().__init__(
            f"A fit {message}", errors=[{"field": "calibration_end", "message": message}]
        )
        self.needed = needed
        self.found = found


@dataclass(frozen=True)
class StoreSummary:
    """The summaries of a store's (or every store's) customers as of a calibration end."""

    store_ids: np.ndarray
    summary: Summary
    holdout_days: np.ndarray  # purchase days after the calibration end, per customer

    def of_store(self, store_id: str) -> Summary:
        keep = self.store_ids == store_id
        s = self.summary
        return Summary(s.frequency[keep], s.recency[keep], s.age[keep], s.monetary[keep])


@dataclass(frozen=True)
class Fitted:
    bgnbd: bgnbd.BgNbd
    gamma_gamma: gamma_gamma.GammaGamma | None
    customers: int
    repeat_customers: int


async def summarise(
    session: AsyncSession,
    *,
    store_id: str | None,
    calibration_end: date,
    time_unit: TimeUnit = "week",
    holdout_end: date | None = None,
) -> StoreSummary:
    """The summary of ``store_id``'s customers (None: every store's) who bought by
    ``calibration_end``, with their purchase days up to ``holdout_end``."""
    db = await driver_connection(session)
    row = await db.fetchrow(_SUMMARY_SQL, store_id, calibration_end, holdout_end or calibration_end)
    assert row is not None  # an aggregate without GROUP BY always returns a row
    if row[0] is None:  # no customer at all
        empty = np.zeros(0)
        return StoreSummary(
            np.array([], dtype=object), Summary.of(frequency=[], recency=[], age=[]), empty
        )
    frequency = np.asarray(row[1], dtype=np.float64)
    repeat_spend = np.asarray(row[4], dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        monetary = np.where(frequency > 0, repeat_spend / np.maximum(frequency, 1.0), 0.0)
    return StoreSummary(
        store_ids=np.asarray(row[0], dtype=object),
        summary=Summary(
            frequency=frequency,
            recency=in_units(row[2], time_unit),
            age=in_units(row[3], time_unit),
            monetary=monetary,
        ),
        holdout_days=np.asarray(row[5], dtype=np.float64),
    )


def fit_summary(summary: Summary) -> Fitted:
    """Both models fitted to ``summary`` (CPU-bound: callers run it off the event loop)."""
    purchases = bgnbd.fit(summary)
    try:
        order_value: gamma_gamma.GammaGamma | None = gamma_gamma.fit(summary)
    except FitFailed:
        # Repeat orders of no value (all refunded): the counts are still worth predicting.
        order_value = None
    return Fitted(purchases, order_value, len(summary), summary.repeat_customers)


def _row(
    fitted: Fitted, *, store_id: str | None, calibration_end: date, time_unit: TimeUnit
) -> ModelFit:
    gg = fitted.gamma_gamma
    return ModelFit(
        id=new_id(),
        store_id=store_id,
        calibration_end=calibration_end,
        time_unit=time_unit,
        customers=fitted.customers,
        repeat_customers=fitted.repeat_customers,
        r=fitted.bgnbd.r,
        alpha=fitted.bgnbd.alpha,
        a=fitted.bgnbd.a,
        b=fitted.bgnbd.b,
        bgnbd_log_likelihood=fitted.bgnbd.log_likelihood,
        p=gg.p if gg else None,
        q=gg.q if gg else None,
        v=gg.v if gg else None,
        gamma_gamma_log_likelihood=gg.log_likelihood if gg else None,
    )


async def store_fit(
    session: AsyncSession,
    fitted: Fitted,
    *,
    store_id: str | None,
    calibration_end: date,
    time_unit: TimeUnit,
) -> ModelFit:
    """Keep ``fitted`` as the fit of ``store_id`` (None: pooled); returns the stored row."""
    row = _row(fitted, store_id=store_id, calibration_end=calibration_end, time_unit=time_unit)
    session.add(row)
    await session.flush()
    await session.refresh(row, ["fitted_at"])
    return row


async def fit_and_store(
    session: AsyncSession,
    summary: Summary,
    *,
    store_id: str | None,
    calibration_end: date,
    time_unit: TimeUnit,
    min_repeat_customers: int,
) -> ModelFit:
    """Fit ``summary`` and keep the fit, or raise :class:`TooLittleData`."""
    if summary.repeat_customers < min_repeat_customers:
        raise TooLittleData(
            needed=min_repeat_customers,
            found=summary.repeat_customers,
            calibration_end=calibration_end,
        )
    fitted = await asyncio.to_thread(fit_summary, summary)
    return await store_fit(
        session, fitted, store_id=store_id, calibration_end=calibration_end, time_unit=time_unit
    )


async def fit_store(
    session: AsyncSession,
    *,
    store_id: str,
    calibration_end: date,
    min_repeat_customers: int,
    time_unit: TimeUnit = "week",
) -> ModelFit:
    """Fit ``store_id`` as of ``calibration_end`` and keep it; a store with too few repeat
    customers gets the pooled fit over every store instead (fitted and kept as such), whose
    ``store_id`` is None. Raises :class:`TooLittleData` when even the pool is too small."""
    own = await summarise(
        session, store_id=store_id, calibration_end=calibration_end, time_unit=time_unit
    )
    if own.summary.repeat_customers >= min_repeat_customers:
        return await fit_and_store(
            session,
            own.summary,
            store_id=store_id,
            calibration_end=calibration_end,
            time_unit=time_unit,
            min_repeat_customers=min_repeat_customers,
        )
    pool = await summarise(
        session, store_id=None, calibration_end=calibration_end, time_unit=time_unit
    )
    return await fit_and_store(
        session,
        pool.summary,
        store_id=None,
        calibration_end=calibration_end,
        time_unit=time_unit,
        min_repeat_customers=min_repeat_customers,
    )


def scope_of(fit: ModelFit) -> Scope:
    return "pooled" if fit.store_id is None else "store"


async def newest_fit(session: AsyncSession, *, store_id: str) -> ModelFit | None:
    """The fit ``store_id``'s predictions use: its own of the latest calibration end, else the
    pooled one; None before any fit."""
    result = await session.execute(_NEWEST_SQL, {"store_id": store_id})
    found = result.mappings().first()
    return ModelFit(**found) if found else None
