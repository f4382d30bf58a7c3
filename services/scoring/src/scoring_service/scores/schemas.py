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


class ScorePublic(BaseModel):
    """API.md's score. Fields nothing computes yet (ladder, loyalty, lifecycle, RFM,
    predictions) are left out until something does, rather than always null."""

    customer_id: str
    store_id: str
    value_tier: str | None
    stats: ScoreStats
    supply_runs_out_on: date | None
    computed_at: datetime | None
    version: int
