from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, Index, SmallInteger, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from crm_libs.ids import new_id


class Visit(SQLModel, table=True):
    """A visit or call as the staff member logged it (DOMAIN.md §4 "Visits")."""

    __table_args__ = (
        Index("ix_visit_store_customer", "store_id", "customer_id", "id"),
        Index("ix_visit_task", "task_id", postgresql_where=text("task_id IS NOT NULL")),
        # The staff statistics count a store's visits of a period.
        Index("ix_visit_store_occurred", "store_id", "occurred_at"),
    )

    id: str = Field(default_factory=new_id, sa_column=Column(Text, primary_key=True))
    store_id: str = Field(sa_column=Column(Text, nullable=False))
    customer_id: str = Field(sa_column=Column(Text, nullable=False))
    staff_id: str | None = Field(default=None, sa_column=Column(Text))
    method: str = Field(sa_column=Column(Text, nullable=False))
    occurred_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    outcome: str = Field(sa_column=Column(Text, nullable=False))
    notes: str = Field(sa_column=Column(Text, nullable=False, server_default=""))
    satisfaction: int | None = Field(default=None, sa_column=Column(SmallInteger))
    task_id: str | None = Field(default=None, sa_column=Column(Text))
    # The fields collected for the customer file, as published on visit.recorded.
    collected: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column(JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    )
    # The task the visit's next step scheduled, if it named a day.
    next_task_id: str | None = Field(default=None, sa_column=Column(Text))
    next_step: str | None = Field(default=None, sa_column=Column(Text))
    # Why the customer may stop buying (visits.schemas.VisitStopReason), when the visit said.
    stop_reason: str | None = Field(default=None, sa_column=Column(Text))
    # Who logged it (the account or key), which may differ from the staff member who visited.
    recorded_by: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )
