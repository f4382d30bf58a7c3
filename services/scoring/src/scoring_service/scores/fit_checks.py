"""A fit asked for through the API: the dates checked, the store's own data only (no pooled
fallback: the caller asked how the models fit *this* store), and the calibration/holdout check.

The holdout check is the standard one of the literature (Fader, Hardie and Lee 2005, fig. 4):
the customers of the calibration period, their purchase days in (calibration end, holdout end]
predicted from the calibration-period fit (BG/NBD's conditional expectation, summed) against
what they actually did.
"""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.principal import Principal
from crm_libs.problems import InvalidField
from scoring_service.config import Settings
from scoring_service.scores import fits
from scoring_service.scores.btyd import bgnbd
from scoring_service.scores.btyd.summary import in_units
from scoring_service.scores.fit_schemas import (
    BgNbdParameters,
    GammaGammaParameters,
    HoldoutCheck,
    ModelFitPublic,
    ModelFitRequest,
)
from scoring_service.scores.models import ModelFit

_STORE_TIMEZONE_SQL = text("SELECT timezone FROM customer_score WHERE store_id = :store_id LIMIT 1")


async def store_today(session: AsyncSession, *, store_id: str, settings: Settings) -> date:
    """Today in the store's time zone (or the replay's ``as_of`` day)."""
    if settings.as_of is not None:
        return settings.as_of
    zone = (await session.execute(_STORE_TIMEZONE_SQL, {"store_id": store_id})).scalar()
    return datetime.now(ZoneInfo(zone or settings.default_timezone)).date()


def _check_dates(request: ModelFitRequest, *, today: date) -> None:
    if request.calibration_end > today:
        raise InvalidField("calibration_end", f"is in the future (the store's today is {today})")
    if request.holdout_end is not None:
        if request.holdout_end <= request.calibration_end:
            raise InvalidField("holdout_end", "must be after calibration_end")
        if request.holdout_end > today:
            raise InvalidField(
                "holdout_end",
                f"is in the future (the store's today is {today}): its purchases are not known",
            )


async def fit_on_request(
    session: AsyncSession,
    *,
    principal: Principal,
    store_id: str,
    request: ModelFitRequest,
    settings: Settings,
) -> ModelFitPublic:
    """Fit ``store_id`` as ``request`` asks, keep the fit, and check it on the holdout."""
    principal.require_store(store_id, what="store")
    _check_dates(request, today=await store_today(session, store_id=store_id, settings=settings))
    summarised = await fits.summarise(
        session,
        store_id=store_id,
        calibration_end=request.calibration_end,
        time_unit=request.time_unit,
        holdout_end=request.holdout_end,
    )
    stored = await fits.fit_and_store(
        session,
        summarised.summary,
        store_id=store_id,
        calibration_end=request.calibration_end,
        time_unit=request.time_unit,
        min_repeat_customers=settings.model_min_repeat_customers,
    )
    holdout = None
    if request.holdout_end is not None:
        span = in_units((request.holdout_end - request.calibration_end).days, request.time_unit)
        predicted = bgnbd.expected_purchases(_bgnbd(stored), summarised.summary, float(span))
        holdout = HoldoutCheck(
            holdout_end=request.holdout_end,
            predicted_repeat=float(np.sum(predicted)),
            actual_repeat=int(np.sum(summarised.holdout_days)),
        )
    return public(stored, store_id=store_id, holdout=holdout)


def _bgnbd(stored: ModelFit) -> bgnbd.BgNbd:
    return bgnbd.BgNbd(stored.r, stored.alpha, stored.a, stored.b, stored.bgnbd_log_likelihood)


def public(stored: ModelFit, *, store_id: str, holdout: HoldoutCheck | None) -> ModelFitPublic:
    gamma_gamma = None
    if (
        stored.p is not None
        and stored.q is not None
        and stored.v is not None
        and stored.gamma_gamma_log_likelihood is not None
    ):
        gamma_gamma = GammaGammaParameters(
            p=stored.p, q=stored.q, v=stored.v, log_likelihood=stored.gamma_gamma_log_likelihood
        )
    assert stored.fitted_at is not None  # set by the database on insert
    return ModelFitPublic(
        id=stored.id,
        store_id=store_id,
        scope=fits.scope_of(stored),
        calibration_end=stored.calibration_end,
        time_unit=stored.time_unit,  # type: ignore[arg-type]  # written from a TimeUnit
        fitted_at=stored.fitted_at,
        customers=stored.customers,
        repeat_customers=stored.repeat_customers,
        bgnbd=BgNbdParameters(
            r=stored.r,
            alpha=stored.alpha,
            a=stored.a,
            b=stored.b,
            log_likelihood=stored.bgnbd_log_likelihood,
        ),
        gamma_gamma=gamma_gamma,
        holdout=holdout,
    )
