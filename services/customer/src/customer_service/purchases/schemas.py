from datetime import datetime

from pydantic import BaseModel, Field

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


class PurchaseItemPublic(BaseModel):
    sku: str
    qty: int
    unit_price: Money
    amount: Money


class PurchasePublic(BaseModel):
    id: str
    store_id: str
    customer_id: str
    staff_id: str | None
    member_event_id: str | None
    purchased_at: datetime
    total: Money
    items: list[PurchaseItemPublic]
