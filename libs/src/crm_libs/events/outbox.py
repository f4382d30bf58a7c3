"""The transactional outbox: events written in the same transaction as the change they announce."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from crm_libs.events.envelope import EventEnvelope

NOTIFY_CHANNEL = "crm_outbox"

# Applied by each service's first migration (one statement each: asyncpg prepares them singly).
# One NOTIFY per inserting statement wakes the relay without polling.
NOTIFY_TRIGGER_SQL = (
    f"""
    CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger AS $$
    BEGIN
        PERFORM pg_notify('{NOTIFY_CHANNEL}', '');
        RETURN NULL;
    END;
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER outbox_notify AFTER INSERT ON outbox_event
        FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()
    """,
)
DROP_NOTIFY_TRIGGER_SQL = (
    "DROP TRIGGER IF EXISTS outbox_notify ON outbox_event",
    "DROP FUNCTION IF EXISTS outbox_notify()",
)


class OutboxEvent(SQLModel, table=True):
    __tablename__ = "outbox_event"
    __table_args__ = (
        Index(
            "ix_outbox_event_unpublished",
            "id",
            postgresql_where=text("published_at IS NULL"),
        ),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True)
    )
    event_id: str = Field(sa_column=Column(Text, nullable=False, unique=True))
    topic: str = Field(sa_column=Column(Text, nullable=False))
    key: str = Field(sa_column=Column(Text, nullable=False))
    envelope: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    created_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )
    published_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    last_error: str | None = Field(default=None, sa_column=Column(Text))


def enqueue(session: AsyncSession, *, topic: str, event: EventEnvelope) -> None:
    """Stage an event for publishing; it is sent only if the surrounding transaction commits."""
    session.add(
        OutboxEvent(
            event_id=str(event.event_id),
            topic=topic,
            key=event.customer_id,
            envelope=event.model_dump(mode="json"),
        )
    )


async def enqueue_many(session: AsyncSession, *, topic: str, events: list[EventEnvelope]) -> None:
    """Stage many events with one INSERT (a tier recompute can move hundreds of customers)."""
    if not events:
        return
    rows = [
        {
            "event_id": str(e.event_id),
            "topic": topic,
            "key": e.customer_id,
            "envelope": e.model_dump(mode="json"),
        }
        for e in events
    ]
    await session.execute(OutboxEvent.__table__.insert(), rows)  # type: ignore[attr-defined]
