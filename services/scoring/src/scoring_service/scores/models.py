from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Column, Date, DateTime, Index, Integer, Numeric, Text, text
from sqlmodel import Field, SQLModel


class CustomerScore(SQLModel, table=True):
    """Per-customer aggregates and the classification computed from them."""

    __tablename__ = "customer_score"
    __table_args__ = (Index("ix_customer_score_store_spend", "store_id", "net_spend_365d"),)

    customer_id: str = Field(primary_key=True)
    store_id: str = Field(sa_column=Column(Text, nullable=False))
    timezone: str = Field(sa_column=Column(Text, nullable=False))
    purchase_count: int = Field(sa_column=Column(Integer, nullable=False))
    first_purchase_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True))
    )
    last_purchase_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True))
    )
    supply_runs_out_on: date | None = Field(default=None, sa_column=Column(Date))
    net_spend_365d: Decimal = Field(
        sa_column=Column(Numeric(14, 2), nullable=False, server_default="0")
    )
    value_tier: str | None = Field(default=None, sa_column=Column(Text))
    version: int = Field(sa_column=Column(Integer, nullable=False, server_default="0"))
    computed_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class PurchaseFact(SQLModel, table=True):
    """The purchases this service has seen, enough to recompute windows and aggregates."""

    __tablename__ = "purchase_fact"
    __table_args__ = (Index("ix_purchase_fact_customer_at", "customer_id", "purchased_at"),)

    purchase_id: str = Field(primary_key=True)
    store_id: str = Field(sa_column=Column(Text, nullable=False))
    customer_id: str = Field(sa_column=Column(Text, nullable=False))
    purchased_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    # The day in the store's time zone and that zone, as the event said: supply counts in days.
    purchased_on: date = Field(sa_column=Column(Date, nullable=False))
    timezone: str = Field(sa_column=Column(Text, nullable=False))
    total: Decimal = Field(sa_column=Column(Numeric(14, 2), nullable=False))
    supply_days: int = Field(sa_column=Column(Integer, nullable=False, server_default="0"))
    created_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )


class MergedCustomer(SQLModel, table=True):
    """A merged-away file and the survivor holding its purchases now (``scores/merges.py``)."""

    __tablename__ = "merged_customer"
    # A survivor merged on in turn: its own merged-away files follow it to the next survivor.
    __table_args__ = (Index("ix_merged_customer_survivor", "survivor_id"),)

    customer_id: str = Field(sa_column=Column(Text, primary_key=True))
    survivor_id: str = Field(sa_column=Column(Text, nullable=False))
    store_id: str = Field(sa_column=Column(Text, nullable=False))
    merged_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )
