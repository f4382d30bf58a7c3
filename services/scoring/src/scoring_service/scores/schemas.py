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


class NextEventPublic(BaseModel):
    """The store's member event to invite the customer to before ``next_purchase_on``
    (scores/member_events.py): its id and its day in the store's time zone."""

    event_id: str
    on: date
    starts_at: datetime
    title: str | None


class ScorePredictions(BaseModel):
    """The four consumption values (DOMAIN.md §3). The buy-till-you-die predictions
    (scores/predictions.py) are null until a fit exists and the customer has bought; the next
    product or category, the expected date and the capability (scores/next_purchase.py) are
    known from the first purchase, and capability and a product for a prospect too."""

    p_alive: float | None
    expected_purchases_90d: float | None
    expected_order_value: MoneyOut | None
    clv_12m: MoneyOut | None
    model: PredictionModel | None
    # The supply run-out date.
    next_purchase_on: date | None = None
    next_event: NextEventPublic | None = None
    next_product_sku: str | None = None
    # The next product's category, or the customer's last category when no product is known.
    next_category: str | None = None
    # Which rule named them: the customer's own rebuy, the store's successor of their last
    # product, the store's most common next purchase, or only the category.
    next_product_basis: Literal["rebuy", "successor", "store", "category"] | None = None
    capability: Literal["initial", "repeat", "compound", "referral"] | None = None


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
