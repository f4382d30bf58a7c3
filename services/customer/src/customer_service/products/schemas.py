from typing import Annotated

from pydantic import BaseModel, Field, field_validator

from customer_service.money import Money
from customer_service.purchases.contraindications import normalise

# A condition, medicine or allergen, matched whole (purchases/contraindications.py).
_Term = Annotated[str, Field(min_length=1, max_length=100)]


class ProductCreate(BaseModel):
    sku: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    name: str = Field(min_length=1, max_length=200)
    category: str = Field(min_length=1, max_length=100)
    unit_price: Money
    days_per_unit: int = Field(gt=0, le=3650, description="Days one unit lasts the customer")
    contraindications: list[_Term] = Field(
        default_factory=list,
        max_length=50,
        description="Conditions and medicines it must not meet, in the words the health file uses",
    )
    allergens: list[_Term] = Field(default_factory=list, max_length=50)

    @field_validator("contraindications", "allergens")
    @classmethod
    def _terms(cls, terms: list[str]) -> list[str]:
        # A blank term would meet every health entry.
        if any(not normalise(t) for t in terms):
            raise ValueError("a term may not be blank")
        return list(dict.fromkeys(t.strip() for t in terms))


class ProductPublic(BaseModel):
    id: str
    sku: str
    name: str
    category: str
    unit_price: Money
    days_per_unit: int
    contraindications: list[str]
    allergens: list[str]
