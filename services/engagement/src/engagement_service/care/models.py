from datetime import date, datetime

from sqlalchemy import Column, Date, DateTime, Integer, PrimaryKeyConstraint, Text, text
from sqlmodel import Field, SQLModel


class SpecialDayPlanned(SQLModel, table=True):
    """Each customer's special days already given a task: one per occasion and year.

    Its own table rather than a unique index on ``task``: a merge moves a file's tasks onto
    the survivor, which may hold the same occasion's task for the year, and a unique task key
    would make that move fail. What was planned stays keyed by the file it was planned for.
    """

    __tablename__ = "special_day_planned"
    __table_args__ = (PrimaryKeyConstraint("customer_id", "occasion", "occasion_year"),)

    customer_id: str = Field(sa_column=Column(Text, nullable=False))
    occasion: str = Field(sa_column=Column(Text, nullable=False))
    # Its year in its own calendar: the lunar year for a lunar birthday or a festival.
    occasion_year: int = Field(sa_column=Column(Integer, nullable=False))
    store_id: str = Field(sa_column=Column(Text, nullable=False))
    occasion_on: date = Field(sa_column=Column(Date, nullable=False))
    task_id: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )


class SpecialDayRun(SQLModel, table=True):
    """The store-local day each store's special days were last planned for: once a day."""

    __tablename__ = "special_day_run"

    store_id: str = Field(sa_column=Column(Text, primary_key=True))
    planned_on: date = Field(sa_column=Column(Date, nullable=False))
    planned_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )


class RoutineRun(SQLModel, table=True):
    """The store-local day each store's routine care was last planned for (care/routine.py)."""

    __tablename__ = "routine_run"

    store_id: str = Field(sa_column=Column(Text, primary_key=True))
    planned_on: date = Field(sa_column=Column(Date, nullable=False))
    planned_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )
