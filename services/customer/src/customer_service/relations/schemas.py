from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from customer_service.money import Money
from customer_service.relations.kinds import RelationKind


class RelationCreate(BaseModel):
    # A partner's typo must not vanish silently (API.md): unknown fields are a 422 naming them.
    model_config = ConfigDict(extra="forbid")

    related_customer_id: str = Field(min_length=1, max_length=64)
    kind: RelationKind = Field(description="What the related customer is to this customer")


class RelationPublic(BaseModel):
    related_customer_id: str
    kind: RelationKind = Field(description="What the related customer is to this customer")
    name: str = Field(description="The related customer's name")
    since: datetime
    related_status: str = Field(
        description="The related file's status: an archived file keeps its relations"
    )


class FamilyPurchaseItem(BaseModel):
    sku: str
    qty: int
    unit_price: Money
    amount: Money


class FamilyPurchasePublic(BaseModel):
    id: str
    customer_id: str
    kind: RelationKind | Literal["self"] = Field(
        description="Who bought: ``self`` for the customer, else the buyer's relation to them"
    )
    staff_id: str | None
    purchased_at: datetime
    total: Money
    items: list[FamilyPurchaseItem]
