from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Column, DateTime, Integer, Numeric, Text, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field, SQLModel

from crm_libs.ids import new_id


class Product(SQLModel, table=True):
    """The brand's catalogue, shared by its stores."""

    __table_args__ = (
        CheckConstraint("days_per_unit > 0", name="ck_product_days_per_unit_positive"),
        CheckConstraint("unit_price >= 0", name="ck_product_unit_price_not_negative"),
    )

    id: str = Field(default_factory=new_id, primary_key=True)
    sku: str = Field(sa_column=Column(Text, nullable=False, unique=True))
    name: str = Field(sa_column=Column(Text, nullable=False))
    category: str = Field(sa_column=Column(Text, nullable=False))
    unit_price: Decimal = Field(sa_column=Column(Numeric(12, 2), nullable=False))
    days_per_unit: int = Field(sa_column=Column(Integer, nullable=False))
    # In the words the health file uses (purchases/contraindications.py matches them).
    contraindications: list[str] = Field(
        default_factory=list,
        sa_column=Column(ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    )
    allergens: list[str] = Field(
        default_factory=list,
        sa_column=Column(ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    )
    created_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )
