from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, PlainSerializer

MoneyOut = Annotated[
    Decimal, PlainSerializer(lambda v: f"{v:.2f}", return_type=str, when_used="json")
]


class ScoreStats(BaseModel):
    purchase_count: int
    net_spend_365d: MoneyOut
    first_purchase_at: datetime | None
    last_purchase_at: datetime | None


class Rfm(BaseModel):
    r: int
    f: int
    m: int
    segment: str


class Predictions(BaseModel):
    p_alive: float | None = None
    expected_purchases_90d: float | None = None
    expected_order_value: MoneyOut | None = None
    clv_12m: MoneyOut | None = None
    next_purchase_on: date | None = None
    next_product_sku: str | None = None
    capability: str | None = None


class ScorePublic(BaseModel):
    """API.md's score; fields later issues compute are null until then."""

    customer_id: str
    store_id: str
    value_tier: str | None
    ladder_level: str | None = None
    ladder_score: int | None = None
    loyalty: str | None = None
    lifecycle: str | None = None
    rfm: Rfm | None = None
    stats: ScoreStats
    supply_runs_out_on: date | None
    predictions: Predictions
    computed_at: datetime | None
    version: int
