from datetime import date, datetime

from sqlalchemy import Column, Date, DateTime, PrimaryKeyConstraint, Text, text
from sqlmodel import Field, SQLModel


class StaffMonthClosed(SQLModel, table=True):
    """Each staff member's months whose ``staff.month_closed`` was written to the outbox: once
    per store, staff member and month (stats/month_close.py)."""

    __tablename__ = "staff_month_closed"
    __table_args__ = (PrimaryKeyConstraint("store_id", "staff_id", "month"),)

    store_id: str = Field(sa_column=Column(Text, nullable=False))
    staff_id: str = Field(sa_column=Column(Text, nullable=False))
    # The month's first day.
    month: date = Field(sa_column=Column(Date, nullable=False))
    closed_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )


class StaffMonthRun(SQLModel, table=True):
    """The last month each store's staff months were closed for: the job's check per store is
    one row, not a month's tasks."""

    __tablename__ = "staff_month_run"

    store_id: str = Field(sa_column=Column(Text, primary_key=True))
    closed_month: date = Field(sa_column=Column(Date, nullable=False))
    closed_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )
