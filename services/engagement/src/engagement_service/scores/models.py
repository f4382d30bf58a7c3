from datetime import date, datetime

from sqlalchemy import Column, Date, DateTime, Integer, Text, text
from sqlmodel import Field, SQLModel


class CustomerScoreSeen(SQLModel, table=True):
    """Engagement's read copy of what care needs from each customer's score (``crm.scores.v1``):
    the lifecycle, the value tier, the supply run-out and the expected next purchase, at the
    newest version applied. A field an event does not carry is left as it was."""

    __tablename__ = "customer_score_seen"

    customer_id: str = Field(sa_column=Column(Text, primary_key=True))
    store_id: str = Field(sa_column=Column(Text, nullable=False))
    # The score's version in scoring: an event not newer than this one changes nothing.
    version: int = Field(sa_column=Column(Integer, nullable=False))
    lifecycle: str | None = Field(default=None, sa_column=Column(Text))
    # The value tier (vip, major, medium, small, inactive, prospect): the work list's order.
    value_tier: str | None = Field(default=None, sa_column=Column(Text))
    supply_runs_out_on: date | None = Field(default=None, sa_column=Column(Date))
    expected_purchase_on: date | None = Field(default=None, sa_column=Column(Date))
    # The run-out whose refill reminder was planned (care/refill.py): the same date again (a
    # tier change, a recompute) plans nothing, even after that reminder was done.
    refill_planned_for: date | None = Field(default=None, sa_column=Column(Date))
    updated_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )
