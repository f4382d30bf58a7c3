"""The score's model predictions, computed when the score is read.

From the store's newest fit (or the pooled one, ``fits.newest_fit``) and the customer's own
purchase facts summarised as the fit was (days counted once, frequency, recency, age as of the
store's today, the repeat days' mean spend): P(alive), the purchases expected in the next 90
days, the expected order value and the 12-month CLV (``btyd.clv``). Computed at read time rather
than stored: they move every day with the customer's age, and the fit is one row to read.
One statement reads the fit and the customer's summary together.
"""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from scoring_service.config import Settings
from scoring_service.scores.btyd import bgnbd, clv, gamma_gamma
from scoring_service.scores.btyd.summary import Summary, TimeUnit, in_units
from scoring_service.scores.consumption import consumption_values
from scoring_service.scores.models import CustomerScore
from scoring_service.scores.schemas import PredictionModel, ScorePredictions
from scoring_service.scores.service import window_start

HORIZON_DAYS = 90  # expected_purchases_90d
CLV_MONTHS = 12

# :store_id, :customer_id, :today. No row before the store or the pool has a fit.
_FIT_AND_CUSTOMER_SQL = text(
    """
    WITH fit AS (
        SELECT store_id, fitted_at, calibration_end, time_unit, r, alpha, a, b, p, q, v
        FROM model_fit
        WHERE store_id = :store_id OR store_id IS NULL
        ORDER BY store_id IS NULL, calibration_end DESC, fitted_at DESC
        LIMIT 1
    ), days AS (
        SELECT purchased_on AS day, SUM(total)::float8 AS spend
        FROM purchase_fact
        WHERE customer_id = :customer_id AND purchased_on <= :today
          AND NOT wholly_refunded  -- a returned sale is no purchase (fits.py's summary)
        GROUP BY purchased_on
    )
    SELECT fit.*, c.days, c.first_day, c.last_day, c.repeat_spend
    FROM fit CROSS JOIN (
        SELECT count(*) AS days, min(day) AS first_day, max(day) AS last_day,
               COALESCE(SUM(spend), 0)
                   - COALESCE((SELECT spend FROM days ORDER BY day LIMIT 1), 0) AS repeat_spend
        FROM days
    ) AS c
    """
)


# Before any fit, or for a customer who has not bought: every prediction null.
NO_PREDICTIONS = ScorePredictions(
    p_alive=None, expected_purchases_90d=None, expected_order_value=None, clv_12m=None, model=None
)


def _money(value: float) -> Decimal:
    return Decimal(f"{value:.2f}")


async def predictions_public(
    session: AsyncSession, *, score: CustomerScore, settings: Settings
) -> ScorePredictions:
    """The predictions shown on ``score``, as of the store's today: the model's and the
    other consumption values (scores/consumption.py)."""
    now, _ = window_start(settings.as_of)
    values = await consumption_values(session, score=score, now=now)
    if score.purchase_count <= 0:
        return NO_PREDICTIONS.model_copy(update=values)  # a prospect: no model to read
    today = settings.as_of or datetime.now(ZoneInfo(score.timezone)).date()
    modelled = await predict(
        session,
        store_id=score.store_id,
        customer_id=score.customer_id,
        today=today,
        monthly_discount_rate=settings.clv_monthly_discount_rate,
    )
    return modelled.model_copy(update=values)


async def predict(
    session: AsyncSession,
    *,
    store_id: str,
    customer_id: str,
    today: date,
    monthly_discount_rate: float,
) -> ScorePredictions:
    """The predictions of ``customer_id`` of ``store_id`` as of ``today``."""
    found = (
        (
            await session.execute(
                _FIT_AND_CUSTOMER_SQL,
                {"store_id": store_id, "customer_id": customer_id, "today": today},
            )
        )
        .mappings()
        .first()
    )
    if found is None or not found["days"]:
        return NO_PREDICTIONS
    time_unit: TimeUnit = found["time_unit"]
    frequency = found["days"] - 1
    summary = Summary.of(
        frequency=[frequency],
        recency=in_units([(found["last_day"] - found["first_day"]).days], time_unit),
        age=in_units([(today - found["first_day"]).days], time_unit),
        monetary=[found["repeat_spend"] / frequency if frequency else 0.0],
    )
    purchases = bgnbd.BgNbd(found["r"], found["alpha"], found["a"], found["b"], 0.0)
    horizon = float(in_units(HORIZON_DAYS, time_unit))
    order_value = None
    lifetime_value = None
    if found["p"] is not None and found["q"] > 1:
        spending = gamma_gamma.GammaGamma(found["p"], found["q"], found["v"], 0.0)
        order_value = _money(float(gamma_gamma.expected_order_value(spending, summary)[0]))
        lifetime_value = _money(
            float(
                clv.lifetime_value(
                    purchases,
                    spending,
                    summary,
                    time_unit=time_unit,
                    months=CLV_MONTHS,
                    monthly_discount_rate=monthly_discount_rate,
                )[0]
            )
        )
    return ScorePredictions(
        p_alive=round(float(bgnbd.p_alive(purchases, summary)[0]), 4),
        expected_purchases_90d=round(
            float(bgnbd.expected_purchases(purchases, summary, horizon)[0]), 4
        ),
        expected_order_value=order_value,
        clv_12m=lifetime_value,
        model=PredictionModel(
            scope="pooled" if found["store_id"] is None else "store",
            fitted_at=found["fitted_at"],
            calibration_end=found["calibration_end"],
        ),
    )
