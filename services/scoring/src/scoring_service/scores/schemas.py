from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, PlainSerializer

MoneyOut = Annotated[
    Decimal, PlainSerializer(lambda v: f"{v:.2f}", return_type=str, when_used="json")
]


class ScoreStats(BaseModel):
    purchase_count: int
    net_spend_365d: MoneyOut
    first_purchase_at: datetime | None
    last_purchase_at: datetime | None


class PredictionModel(BaseModel):
    """Which fit the predictions come from: the store's own, or the pooled one of every store
    (a store with too few repeat customers for its own)."""

    scope: Literal["store", "pooled"]
    fitted_at: datetime
    calibration_end: date


class ScorePredictions(BaseModel):
    """The buy-till-you-die predictions (scores/predictions.py); null until a fit exists and
    the customer has bought."""

    p_alive: float | None
    expected_purchases_90d: float | None
    expected_order_value: MoneyOut | None
    clv_12m: MoneyOut | None
    model: PredictionModel | None


class ScoreRfm(BaseModel):
    """Recency, frequency and money quintiles (1-5) in the store, and the segment they name
    (scores/rfm.py); null until the customer has bought."""

    r: int | None
    f: int | None
    m: int | None
    segment: str | None


class ScorePublic(BaseModel):
    """API.md's score. The classifications are null until the customer is first classified
    (ladder and lifecycle also while the customer has not bought)."""

    customer_id: str
    store_id: str
    value_tier: str | None
    ladder_level: str | None
    ladder_score: int | None
    loyalty: str | None
    lifecycle: str | None
    rfm: ScoreRfm
    stats: ScoreStats
    supply_runs_out_on: date | None
    predictions: ScorePredictions
    computed_at: datetime | None
    version: int
