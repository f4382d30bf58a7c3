from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    Numeric,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from crm_libs.ids import new_id


class Complaint(SQLModel, table=True):
    """A customer's complaint (DOMAIN.md §7) and where its four steps have got to.

    ``next_step`` is the step the complaint waits for (complaints/steps.py): null once closed.
    ``round`` counts the follow-ups: an unsatisfied feedback opens the next round, whose
    follow-up task is ``follow_up_task_id``. Days are the store's (``opened_on``, ``closed_on``).
    """

    __table_args__ = (
        Index("ix_complaint_store_customer", "store_id", "customer_id", "id"),
        Index("ix_complaint_store_opened", "store_id", "opened_on"),
        Index(
            "ix_complaint_store_closed",
            "store_id",
            "closed_on",
            postgresql_where=text("closed_on IS NOT NULL"),
        ),
    )

    id: str = Field(default_factory=new_id, sa_column=Column(Text, primary_key=True))
    store_id: str = Field(sa_column=Column(Text, nullable=False))
    customer_id: str = Field(sa_column=Column(Text, nullable=False))
    category: str = Field(sa_column=Column(Text, nullable=False))  # a schemas.Category
    points: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(sa_column=Column(Text, nullable=False))  # open, closed
    next_step: str | None = Field(default=None, sa_column=Column(Text))
    round: int = Field(sa_column=Column(Integer, nullable=False, server_default="1"))
    opened_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    opened_on: date = Field(sa_column=Column(Date, nullable=False))
    # Who recorded it: the account or key, and its staff member if it names one.
    opened_by: str = Field(sa_column=Column(Text, nullable=False))
    opened_by_staff_id: str | None = Field(default=None, sa_column=Column(Text))
    closed_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    closed_on: date | None = Field(default=None, sa_column=Column(Date))
    # Set when it closes (steps.on_the_spot): the rule is decided once, the statistics count it.
    resolved_on_the_spot: bool | None = Field(default=None, sa_column=Column(Boolean))
    follow_up_task_id: str | None = Field(default=None, sa_column=Column(Text))


class ComplaintStep(SQLModel, table=True):
    """One of a complaint's steps as it was taken: once per step and round."""

    __tablename__ = "complaint_step"
    __table_args__ = (UniqueConstraint("complaint_id", "round", "step"),)

    id: str = Field(default_factory=new_id, sa_column=Column(Text, primary_key=True))
    complaint_id: str = Field(sa_column=Column(Text, nullable=False))
    store_id: str = Field(sa_column=Column(Text, nullable=False))
    round: int = Field(sa_column=Column(Integer, nullable=False))
    step: str = Field(sa_column=Column(Text, nullable=False))  # a steps.Step
    taken_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    taken_by: str = Field(sa_column=Column(Text, nullable=False))
    staff_id: str | None = Field(default=None, sa_column=Column(Text))
    notes: str = Field(sa_column=Column(Text, nullable=False, server_default=""))
    # resolve: the cause found, the solution agreed and the compensation given (yuan; a gift
    # described in compensation_note, valued in compensation).
    cause: str | None = Field(default=None, sa_column=Column(Text))
    solution: str | None = Field(default=None, sa_column=Column(Text))
    compensation: Decimal | None = Field(default=None, sa_column=Column(Numeric(12, 2)))
    compensation_note: str | None = Field(default=None, sa_column=Column(Text))
    # feedback: whether the customer was satisfied.
    satisfied: bool | None = Field(default=None, sa_column=Column(Boolean))
