"""The tables of DOMAIN.md §9's reassignment (孤单流转): every change of a file's owner, the
store's pool of orphan files, the staff's monthly completion as engagement closes it, and the
day the inactivity check last ran per store."""

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    Text,
    text,
)
from sqlmodel import Field, SQLModel


class OwnershipChange(SQLModel, table=True):
    """One change of a file's owner, with why and by whom: a row is never changed or deleted."""

    __tablename__ = "ownership_change"
    __table_args__ = (
        Index("ix_ownership_change_customer_at", "customer_id", "at"),
        # The take-back's cohort: the pool files a staff member received (pool assignments
        # only: a registration's entry is never looked for there).
        Index(
            "ix_ownership_change_pool_received",
            "store_id",
            "to_staff_id",
            "at",
            postgresql_where=text("kind = 'pool_assignment'"),
        ),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True)
    )
    # No foreign key: files are never deleted, and each row is written in the transaction
    # that writes or locks its file (the key cost every row a look-up and a lock: migration
    # 0017).
    customer_id: str = Field(sa_column=Column(Text, nullable=False))
    store_id: str = Field(sa_column=Column(Text, nullable=False))
    at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )
    from_staff_id: str | None = Field(default=None, sa_column=Column(Text))
    # Null: the file went to the store's pool (a merge: the survivor has no owner).
    to_staff_id: str | None = Field(default=None, sa_column=Column(Text))
    # registered, owner_changed, transfer, departure, pool_assignment, take_back, merged
    # (rules.py).
    kind: str = Field(sa_column=Column(Text, nullable=False))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    # The account that made the change (the principal's subject), or the system's job.
    by: str = Field(sa_column=Column(Text, nullable=False))
    # Counted by the 90-day rule (rules.counts_as_change_of_hands), fixed when written.
    change_of_hands: bool = Field(sa_column=Column(Boolean, nullable=False))
    # A pool file given to staff between 50 % and 80 % completion: the manager's approval.
    manager_approval: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=text("false"))
    )


class PoolFile(SQLModel, table=True):
    """An orphan file waiting in its store's pool for an owner (the file's owner is null)."""

    __tablename__ = "customer_pool"
    __table_args__ = (Index("ix_customer_pool_store_customer", "store_id", "customer_id"),)

    customer_id: str = Field(sa_column=Column(Text, ForeignKey("customer.id"), primary_key=True))
    store_id: str = Field(sa_column=Column(Text, nullable=False))
    in_pool_since: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )
    # Whose file it was (the staff member who left, moved, went quiet or had it taken back).
    from_staff_id: str | None = Field(default=None, sa_column=Column(Text))


class StaffMonthCompletion(SQLModel, table=True):
    """A staff member's follow-up completion over a month, from engagement's
    ``staff.month_closed`` on ``crm.engagement.v1``: the newest event per staff member and month."""

    __tablename__ = "staff_month_completion"
    __table_args__ = (PrimaryKeyConstraint("staff_id", "month"),)

    staff_id: str = Field(sa_column=Column(Text, nullable=False))
    # The month's first day.
    month: date = Field(sa_column=Column(Date, nullable=False))
    store_id: str = Field(sa_column=Column(Text, nullable=False))
    completion_rate: Decimal = Field(sa_column=Column(Numeric(5, 4), nullable=False))
    tasks_due: int = Field(sa_column=Column(Integer, nullable=False))
    closed_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class InactivityCheckDay(SQLModel, table=True):
    """The store-local day the inactive staff were last looked for in each store."""

    __tablename__ = "staff_inactivity_day"

    store_id: str = Field(sa_column=Column(Text, primary_key=True))
    checked_on: date = Field(sa_column=Column(Date, nullable=False))
    checked_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )
