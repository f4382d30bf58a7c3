from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from customer_service.money import Money


class PurchaseItemIn(BaseModel):
    sku: str = Field(min_length=1, max_length=64)
    qty: int = Field(gt=0, le=10_000, description="Units (boxes)")
    unit_price: Money | None = Field(default=None, description="Defaults to the catalogue price")


class PurchaseCreate(BaseModel):
    purchased_at: datetime = Field(description="With offset; without one, the store's local time")
    staff_id: str | None = Field(default=None, max_length=64)
    member_event_id: str | None = Field(default=None, max_length=64)
    items: list[PurchaseItemIn] = Field(min_length=1, max_length=200)
    acknowledge_warnings: bool = Field(
        default=False,
        description="Sell although a product meets the customer's health file (a 409 named the "
        "warnings); the acknowledgement is kept on the purchase",
    )


class HealthWarningPublic(BaseModel):
    """A product meeting the customer's health file. Roles that may not see health data get
    ``kind: contraindication`` and no words (purchases/contraindications.py)."""

    sku: str
    kind: str = Field(description="allergy, condition, medicine; or contraindication")
    matched: str | None = Field(description="The health file's words")
    term: str | None = Field(description="The catalogue's words")


class WarningsPublic(BaseModel):
    warnings: list[HealthWarningPublic]


class AcknowledgementPublic(BaseModel):
    by: str
    at: datetime
    warnings: list[HealthWarningPublic]


class PurchaseItemPublic(BaseModel):
    sku: str
    qty: int
    unit_price: Money
    amount: Money
    refunded_qty: int = 0
    refunded_amount: Money = Field(default=Decimal("0.00"))


class PurchasePublic(BaseModel):
    id: str
    store_id: str
    customer_id: str
    staff_id: str | None
    member_event_id: str | None
    purchased_at: datetime
    total: Money
    items: list[PurchaseItemPublic]
    refunded_total: Money = Field(default=Decimal("0.00"))
    acknowledgement: AcknowledgementPublic | None = None


class RefundReason(StrEnum):
    """DOMAIN §2: why the customer brought it back."""

    FAMILY_OBJECTION = "family_objection"
    PUSHED_TOO_HARD = "pushed_too_hard"
    NO_EFFECT = "no_effect"
    QUALITY = "quality"
    OTHER = "other"


class RefundItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str = Field(min_length=1, max_length=64)
    qty: int = Field(gt=0, le=10_000)


class RefundCreate(BaseModel):
    # A misspelt "items" must not silently refund the whole purchase.
    model_config = ConfigDict(extra="forbid")

    reason: RefundReason
    note: str | None = Field(default=None, max_length=500)
    items: list[RefundItemIn] | None = Field(
        default=None, min_length=1, max_length=200, description="Absent: the whole purchase"
    )


class RefundItemPublic(BaseModel):
    sku: str
    qty: int
    unit_price: Money
    amount: Money


class RefundPublic(BaseModel):
    id: str
    purchase_id: str
    store_id: str
    customer_id: str
    reason: RefundReason
    note: str | None
    total: Money
    refunded_by: str
    refunded_at: datetime
    items: list[RefundItemPublic]
