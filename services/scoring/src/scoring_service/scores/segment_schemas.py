"""The shapes of segment listings, distributions and recomputes."""

from datetime import date, datetime

from pydantic import BaseModel, Field

from scoring_service.scores.models import CustomerScore
from scoring_service.scores.schemas import ScoreStats


class SegmentRfm(BaseModel):
    r: int
    f: int
    m: int
    segment: str


class SegmentScore(BaseModel):
    """A listed score: API.md's score without the predictions (they are computed from the
    customer's purchases when one score is read, not for a page of them)."""

    customer_id: str
    store_id: str
    value_tier: str | None
    ladder_level: str | None
    ladder_score: int | None
    loyalty: str | None
    lifecycle: str | None
    rfm: SegmentRfm | None
    stats: ScoreStats
    supply_runs_out_on: date | None
    computed_at: datetime | None
    version: int

    @classmethod
    def of(cls, score: CustomerScore) -> "SegmentScore":
        rfm = None
        if None not in (score.rfm_r, score.rfm_f, score.rfm_m, score.rfm_segment):
            rfm = SegmentRfm(r=score.rfm_r, f=score.rfm_f, m=score.rfm_m, segment=score.rfm_segment)
        return cls(
            customer_id=score.customer_id,
            store_id=score.store_id,
            value_tier=score.value_tier,
            ladder_level=score.ladder_level,
            ladder_score=score.ladder_score,
            loyalty=score.loyalty,
            lifecycle=score.lifecycle,
            rfm=rfm,
            stats=ScoreStats(
                purchase_count=score.purchase_count,
                net_spend_365d=score.net_spend_365d,
                first_purchase_at=score.first_purchase_at,
                last_purchase_at=score.last_purchase_at,
            ),
            supply_runs_out_on=score.supply_runs_out_on,
            computed_at=score.computed_at,
            version=score.version,
        )


class SegmentPage(BaseModel):
    items: list[SegmentScore]
    next_cursor: str | None = None


class StoreDistribution(BaseModel):
    """Customers per value of each classification; ``none`` counts those it leaves out (a
    file with no purchase has no ladder, lifecycle, loyalty or RFM), so each adds up to
    ``customers``."""

    store_id: str
    customers: int
    value_tier: dict[str, int]
    ladder: dict[str, int]
    lifecycle: dict[str, int]
    loyalty: dict[str, int]
    rfm_segment: dict[str, int]


class RecomputeRequest(BaseModel):
    model_config = {"extra": "forbid"}

    store_id: str = Field(min_length=1, max_length=200)


class RecomputeResult(BaseModel):
    store_id: str
    customers: int = Field(description="The store's scores, every one recomputed")
    changed: int = Field(
        description=(
            "Changes published as score.changed: tiers moved, then ladders or lifecycles "
            "changed (a customer whose tier and lifecycle both moved counts in each)"
        )
    )
    corrected: int = Field(
        description="Aggregates that differed from the stored purchases and were rebuilt"
    )
