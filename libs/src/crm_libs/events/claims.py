"""The consumer group's claims on the events it applies: ``processed_event``, a first delivery.

A batch of distinct events is claimed with one ``COPY`` (:func:`copy_claims`); a batch that may
hold events applied before, with conflict checks (:func:`claim_new_events`). See
:mod:`crm_libs.events.consumer`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Column, DateTime, PrimaryKeyConstraint, Text, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from crm_libs.events.driver import driver_connection


class Claimable(Protocol):
    """What a consumer needs of a decoded event: its id (a UUID, or its text)."""

    @property
    def event_id(self) -> object: ...


class ProcessedEvent(SQLModel, table=True):
    """Which events a consumer group has already applied (its effect is exactly-once)."""

    __tablename__ = "processed_event"
    __table_args__ = (PrimaryKeyConstraint("consumer", "event_id"),)

    consumer: str = Field(sa_column=Column(Text, nullable=False))
    event_id: str = Field(sa_column=Column(Text, nullable=False))
    processed_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()"))
    )


_CLAIM_NEW_SQL = text(
    """
    INSERT INTO processed_event (consumer, event_id)
    SELECT :consumer, unnest(CAST(:ids AS text[]))
    ON CONFLICT DO NOTHING
    RETURNING event_id
    """
)
_CLAIM_COLUMNS = ("consumer", "event_id")

# session.info keys: set while a batch of events new to the group is applied (first_delivery),
# with what the consumer's prepare() made of it (prepared).
_FIRST_DELIVERY = "crm.events.first_delivery"
_PREPARED = "crm.events.prepared"


def first_delivery(session: AsyncSession) -> bool:
    """True while the consumer applies a batch whose events it claimed with one COPY: all of
    them are new to the group, except the ``idempotent`` ones, which were not claimed. The
    handler may then bulk-copy rows keyed by its events without a conflict check (for the
    idempotent ones it must: that COPY is their claim); a duplicate key makes the consumer apply
    the batch again, with this False (and the handler's inserts must then skip what exists)."""
    return bool(session.info.get(_FIRST_DELIVERY))


def prepared(session: AsyncSession) -> Any:
    """What the consumer's ``prepare`` made of the batch being applied, when it is applied as
    decoded (a first delivery, every event in it); None otherwise: the handler then works from
    the events it is given, which may be fewer."""
    return session.info.get(_PREPARED)


async def claim_new_events(
    session: AsyncSession,
    *,
    consumer: str,
    events: Sequence[Claimable],
    idempotent: Callable[[Any], bool] | None = None,
) -> list[Any]:
    """Record the events as processed and return only those not seen before, in order.

    Events for which ``idempotent`` is true are neither recorded nor checked: all of them come
    back (the handler skips what it applied before)."""
    if not events:
        return []
    ids = [str(e.event_id) for e in events if idempotent is None or not idempotent(e)]
    fresh: set[str] = set()
    if ids:
        fresh = set(
            (await session.execute(_CLAIM_NEW_SQL, {"consumer": consumer, "ids": ids})).scalars()
        )
    seen: set[str] = set()
    out = []
    for event in events:
        if idempotent is not None and idempotent(event):
            out.append(event)
            continue
        event_id = str(event.event_id)
        if event_id in fresh and event_id not in seen:
            seen.add(event_id)
            out.append(event)
    return out


def claim_rows(*, consumer: str, event_ids: Sequence[str]) -> list[tuple[str, str]]:
    """The rows :func:`copy_claims` copies, made ahead of the transaction."""
    return [(consumer, event_id) for event_id in event_ids]


async def copy_claims(session: AsyncSession, *, claims: list[tuple[str, str]]) -> None:
    """Claim events known to be distinct (:func:`claim_rows`) with one COPY; fails on the
    primary key if any of them was claimed before.

    A binary COPY: asyncpg encodes the values, the server only stores them (CSV made ahead
    moved the work into the server's parsing, the busier side here)."""
    if not claims:
        return
    driver = await driver_connection(session)
    await driver.copy_records_to_table(
        ProcessedEvent.__tablename__, records=claims, columns=_CLAIM_COLUMNS
    )
