"""Who has finished a follow-up plan and moved to routine care (DOMAIN.md §4).

One row per customer, written when a plan's last phase is done: ``routine_since`` is the
store-local day the customer first moved there. The routine cadence (calls and home visits by
the expected next purchase) reads it to know whom to plan for; a later plan completed changes
nothing (the customer is in routine care already).
"""

from datetime import date, datetime

from sqlalchemy import Column, Date, DateTime, Index, Text, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel


class CustomerCare(SQLModel, table=True):
    __tablename__ = "customer_care"
    __table_args__ = (Index("ix_customer_care_store", "store_id"),)

    customer_id: str = Field(sa_column=Column(Text, primary_key=True))
    store_id: str = Field(sa_column=Column(Text, nullable=False))
    routine_since: date = Field(sa_column=Column(Date, nullable=False))
    # The plan whose last phase moved the customer here.
    plan_id: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )


async def move_to_routine_care(
    session: AsyncSession, *, store_id: str, customer_id: str, plan_id: str, since: date
) -> None:
    """Mark the customer for routine care from ``since`` unless already marked."""
    await session.execute(
        insert(CustomerCare)
        .values(customer_id=customer_id, store_id=store_id, routine_since=since, plan_id=plan_id)
        .on_conflict_do_nothing()
    )
