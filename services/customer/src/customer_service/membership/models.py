"""Membership's tables: a store's rules, each member's account and the points ledger."""

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

# A ledger row's kinds (API.md): lots (points that can be spent and expire) are ``earn`` and a
# positive ``adjust``; every other kind takes points.
EARN, REDEEM, EXPIRE, REVERSE, ADJUST = "earn", "redeem", "expire", "reverse", "adjust"
KINDS = (EARN, REDEEM, EXPIRE, REVERSE, ADJUST)


class MembershipRules(SQLModel, table=True):
    """A store's rules; a store without a row runs on ``rules.DEFAULT_RULES``."""

    __tablename__ = "membership_rules"

    store_id: str = Field(sa_column=Column(Text, ForeignKey("store.id"), primary_key=True))
    points_per_yuan: Decimal = Field(sa_column=Column(Numeric(10, 4), nullable=False))
    points_expire_months: int = Field(sa_column=Column(Integer, nullable=False))
    levels: list[dict[str, Any]] = Field(sa_column=Column(JSONB, nullable=False))
    updated_by: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )


class MemberAccount(SQLModel, table=True):
    """One member's balance (the row every change of it locks) and the level last announced."""

    __tablename__ = "member_account"
    __table_args__ = (
        CheckConstraint("points_balance >= 0", name="ck_member_account_balance_not_negative"),
        Index("ix_member_account_store_id", "store_id", "customer_id"),
    )

    customer_id: str = Field(sa_column=Column(Text, ForeignKey("customer.id"), primary_key=True))
    store_id: str = Field(sa_column=Column(Text, ForeignKey("store.id"), nullable=False))
    points_balance: int = Field(sa_column=Column(BigInteger, nullable=False))
    # NULL: never moved from the level of no spend (the lowest level reached at 0).
    level: str | None = Field(default=None, sa_column=Column(Text))
    previous_level: str | None = Field(default=None, sa_column=Column(Text))
    # The customer.level_changed event that announced ``level``: a sale compares it with its
    # own to know whether it was the one that moved the level (published once).
    level_event_id: str | None = Field(default=None, sa_column=Column(Text))
    level_changed_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True))
    )


class PointsEntry(SQLModel, table=True):
    """One change of a balance, with what caused it and the balance after it."""

    __tablename__ = "points_entry"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('earn', 'redeem', 'expire', 'reverse', 'adjust')", name="ck_points_entry_kind"
        ),
        CheckConstraint("balance_after >= 0", name="ck_points_entry_balance_after"),
        CheckConstraint(
            "remaining IS NULL OR (remaining >= 0 AND remaining <= points)",
            name="ck_points_entry_remaining",
        ),
        CheckConstraint("expired >= 0", name="ck_points_entry_expired"),
        # The ledger's pages, a customer's at a time.
        Index("ix_points_entry_store_customer_id", "store_id", "customer_id", "id"),
        # What a sale earned and its refunds reversed (a purchase may have moved by a merge).
        Index("ix_points_entry_store_reference", "store_id", "reference"),
        # Lots not yet spent: taken oldest-expiring first, expired by the daily job.
        Index(
            "ix_points_entry_open_lots",
            "customer_id",
            "expires_on",
            postgresql_where=text("remaining > 0"),
        ),
        Index(
            "ix_points_entry_store_open_lots",
            "store_id",
            "expires_on",
            postgresql_where=text("remaining > 0"),
        ),
    )

    id: str = Field(sa_column=Column(Text, primary_key=True))
    store_id: str = Field(sa_column=Column(Text, ForeignKey("store.id"), nullable=False))
    customer_id: str = Field(sa_column=Column(Text, ForeignKey("customer.id"), nullable=False))
    at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )
    kind: str = Field(sa_column=Column(Text, nullable=False))
    # Signed: what the change added (earn, adjust in) or took (negative).
    points: int = Field(sa_column=Column(BigInteger, nullable=False))
    balance_after: int = Field(sa_column=Column(BigInteger, nullable=False))
    # A purchase id (earn, reverse), a refund id's purchase, a merge, a gift's redemption key.
    reference: str | None = Field(default=None, sa_column=Column(Text))
    reason: str | None = Field(default=None, sa_column=Column(Text))
    # A reversal's points it could not take (the balance had been spent): recorded, not owed.
    shortfall: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, server_default=text("0"))
    )
    # Lots only: what is left of them, and the store-local day they expire.
    remaining: int | None = Field(default=None, sa_column=Column(BigInteger))
    expires_on: date | None = Field(default=None, sa_column=Column(Date))
    # Lots only: what of them expired (the rest of a spent lot was redeemed or reversed): a
    # refund does not take back again what its sale earned and expiry took already.
    expired: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, server_default=text("0"))
    )


class PointsExpiryDay(SQLModel, table=True):
    """The store-local day a store's points were last expired for (one run per day)."""

    __tablename__ = "points_expiry_day"

    store_id: str = Field(sa_column=Column(Text, ForeignKey("store.id"), primary_key=True))
    expired_on: date = Field(sa_column=Column(Date, nullable=False))
    expired_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
