from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from customer_service.money import Money


class Level(BaseModel):
    code: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")
    name: str = Field(min_length=1, max_length=100)
    min_spend_12m: Money = Field(description="The 12-month spend (CNY) that reaches the level")
    discount_percent: Decimal = Field(ge=0, le=100, max_digits=5, decimal_places=2)
    benefits: list[str] = Field(default_factory=list, max_length=20)


class MembershipRulesIn(BaseModel):
    points_per_yuan: Decimal = Field(ge=0, le=1000, max_digits=10, decimal_places=4)
    points_expire_months: int = Field(ge=1, le=120)
    levels: list[Level] = Field(
        max_length=20, description="Lowest first: each reached by a higher 12-month spend"
    )


class MembershipRulesPublic(MembershipRulesIn):
    store_id: str
    # False: the store runs on the defaults, never saved.
    configured: bool
    updated_at: datetime | None = None


class PointsExpiring(BaseModel):
    points: int
    on: date


class MembershipPublic(BaseModel):
    customer_id: str
    level: str | None = Field(description="The level's code; null below the lowest level")
    level_name: str | None = None
    discount_percent: Decimal = Decimal("0")
    points_balance: int
    points_expiring: list[PointsExpiring]
    spend_12m: Money


class PointsEntryPublic(BaseModel):
    id: str
    at: datetime
    kind: Literal["earn", "redeem", "expire", "reverse", "adjust"]
    points: int
    balance_after: int
    reference: str | None = None
    reason: str | None = None
    shortfall: int = 0
    expires_on: date | None = None


class RedemptionCreate(BaseModel):
    points: int = Field(gt=0, le=10_000_000)
    gift: str = Field(min_length=1, max_length=200)
