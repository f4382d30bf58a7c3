from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from crm_libs.ids import new_id


class Purchase(SQLModel, table=True):
    __table_args__ = (
        Index("ix_purchase_store_id_customer_id_id", "store_id", "customer_id", "id"),
    )

    id: str = Field(default_factory=new_id, primary_key=True)
    store_id: str = Field(sa_column=Column(Text, ForeignKey("store.id"), nullable=False))
    customer_id: str = Field(sa_column=Column(Text, ForeignKey("customer.id"), nullable=False))
    staff_id: str | None = Field(default=None, sa_column=Column(Text, ForeignKey("staff.id")))
    member_event_id: str | None = Field(default=None, sa_column=Column(Text))
    purchased_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    total: Decimal = Field(sa_column=Column(Numeric(14, 2), nullable=False))
    # Sold despite contraindication warnings (purchases/contraindications.py): who, when, and
    # the warnings, encrypted (they are health data).
    acknowledged_by: str | None = Field(default=None, sa_column=Column(Text))
    acknowledged_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True))
    )
    acknowledged_warnings_encrypted: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )


class PurchaseLine(SQLModel, table=True):
    __tablename__ = "purchase_line"
    __table_args__ = (
        CheckConstraint("qty > 0", name="ck_purchase_line_qty_positive"),
        Index("ix_purchase_line_purchase_id", "purchase_id"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True)
    )
    purchase_id: str = Field(sa_column=Column(Text, ForeignKey("purchase.id"), nullable=False))
    product_id: str = Field(sa_column=Column(Text, ForeignKey("product.id"), nullable=False))
    sku: str = Field(sa_column=Column(Text, nullable=False))
    qty: int = Field(sa_column=Column(Integer, nullable=False))
    unit_price: Decimal = Field(sa_column=Column(Numeric(12, 2), nullable=False))
    amount: Decimal = Field(sa_column=Column(Numeric(14, 2), nullable=False))


class PurchaseRefund(SQLModel, table=True):
    """Goods brought back and money returned, for a reason (DOMAIN §2)."""

    __tablename__ = "purchase_refund"
    __table_args__ = (
        CheckConstraint(
            "reason IN ('family_objection', 'pushed_too_hard', 'no_effect', 'quality', 'other')",
            name="ck_purchase_refund_reason",
        ),
        Index("ix_purchase_refund_purchase_id", "purchase_id"),
    )

    id: str = Field(default_factory=new_id, sa_column=Column(Text, primary_key=True))
    purchase_id: str = Field(sa_column=Column(Text, ForeignKey("purchase.id"), nullable=False))
    store_id: str = Field(sa_column=Column(Text, ForeignKey("store.id"), nullable=False))
    customer_id: str = Field(sa_column=Column(Text, ForeignKey("customer.id"), nullable=False))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    note: str | None = Field(default=None, sa_column=Column(Text))
    total: Decimal = Field(sa_column=Column(Numeric(14, 2), nullable=False))
    refunded_by: str = Field(sa_column=Column(Text, nullable=False))
    refunded_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class PurchaseRefundLine(SQLModel, table=True):
    __tablename__ = "purchase_refund_line"
    __table_args__ = (
        CheckConstraint("qty > 0", name="ck_purchase_refund_line_qty_positive"),
        Index("ix_purchase_refund_line_purchase_id", "purchase_id"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True)
    )
    refund_id: str = Field(sa_column=Column(Text, ForeignKey("purchase_refund.id"), nullable=False))
    purchase_id: str = Field(sa_column=Column(Text, ForeignKey("purchase.id"), nullable=False))
    purchase_line_id: int = Field(
        sa_column=Column(BigInteger, ForeignKey("purchase_line.id"), nullable=False)
    )
    sku: str = Field(sa_column=Column(Text, nullable=False))
    qty: int = Field(sa_column=Column(Integer, nullable=False))
    unit_price: Decimal = Field(sa_column=Column(Numeric(12, 2), nullable=False))
    amount: Decimal = Field(sa_column=Column(Numeric(14, 2), nullable=False))


class IdempotencyRecord(SQLModel, table=True):
    """The first response to a keyed write, replayed when the same key and body come again."""

    __tablename__ = "idempotency_record"
    __table_args__ = (PrimaryKeyConstraint("scope", "key"),)

    scope: str = Field(sa_column=Column(Text, nullable=False))
    key: str = Field(sa_column=Column(Text, nullable=False))
    request_hash: str = Field(sa_column=Column(Text, nullable=False))
    status_code: int = Field(sa_column=Column(Integer, nullable=False))
    body: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    created_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )
