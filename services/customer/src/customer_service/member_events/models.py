from datetime import datetime

from sqlalchemy import Column, DateTime, Text
from sqlmodel import Field, SQLModel


class KnownMemberEvent(SQLModel, table=True):
    """A store's member event as ``crm.engagement.v1`` announced it (``event.scheduled``,
    ``event.cancelled``): what a purchase's ``member_event_id`` is checked against. Not
    ``member_event``: scoring's table has that name in the one metadata the services share when
    imported together."""

    __tablename__ = "member_event_known"

    event_id: str = Field(sa_column=Column(Text, primary_key=True))
    # Null until the schedule arrives (a cancellation delivered first is kept and wins).
    store_id: str | None = Field(default=None, sa_column=Column(Text))
    scheduled_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    cancelled_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
