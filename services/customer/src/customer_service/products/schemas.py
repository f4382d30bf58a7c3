from pydantic import BaseModel, Field

from customer_service.money import Money


class ProductCreate(BaseModel):
    sku: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    name: str = Field(min_length=1, max_length=200)
    category: str = Field(min_length=1, max_length=100)
    unit_price: Money
    days_per_unit: int = Field(gt=0, le=3650, description="Days one unit lasts the customer")


class ProductPublic(BaseModel):
    id: str
    sku: str
    name: str
    category: str
    unit_price: Money
    days_per_unit: int
