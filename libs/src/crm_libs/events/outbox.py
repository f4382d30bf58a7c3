"""The transactional outbox: events written in the same transaction as the change they announce."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import cramjam
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSON
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import Field, SQLModel

from crm_libs import text_lists
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


# A row holds one event (``envelope``) or a batch of them (``keys`` and ``envelopes``, as many
# of each), and says how many (``events``).
BATCH_CHECK = (
    "(envelope IS NULL) = (envelopes IS NOT NULL) AND (keys IS NULL) = (envelopes IS NULL) "
    "AND (keys IS NULL OR cardinality(keys) = cardinality(envelopes)) "
    "AND events = COALESCE(cardinality(keys), 1)"
)
# What each service's migration to batch rows runs (one statement each), and its way back.
BATCH_ROWS_SQL = (
    "ALTER TABLE outbox_event ALTER COLUMN envelope DROP NOT NULL",
    "ALTER TABLE outbox_event ADD COLUMN keys text[]",
    "ALTER TABLE outbox_event ADD COLUMN envelopes text[]",
    "ALTER TABLE outbox_event ADD COLUMN events integer NOT NULL DEFAULT 1",
    # A batch's texts are kilobytes each, hundreds of kilobytes together: out of line as they
    # are, not compressed (pglz, the only compression the embedded server has, cost more than
    # storing them).
    "ALTER TABLE outbox_event ALTER COLUMN keys SET STORAGE EXTERNAL",
    "ALTER TABLE outbox_event ALTER COLUMN envelopes SET STORAGE EXTERNAL",
    f"ALTER TABLE outbox_event ADD CONSTRAINT ck_outbox_event_one_or_batch CHECK ({BATCH_CHECK})",
)
# Back to a row per event: a batch row's events become rows of their own (after every other
# row: their customers' later events, rare in a batch's lifetime, may then overtake them).
DROP_BATCH_ROWS_SQL = (
    """
    INSERT INTO outbox_event (event_id, topic, key, envelope, created_at, published_at,
                              attempts, last_error, retry_at, parked_at)
    SELECT e::json->>'event_id', o.topic, k, e::json, o.created_at, o.published_at,
           o.attempts, o.last_error, o.retry_at, o.parked_at
    FROM outbox_event o, unnest(o.keys, o.envelopes) WITH ORDINALITY AS u(k, e, n)
    WHERE o.keys IS NOT NULL
    ORDER BY o.id, u.n
    """,
    "DELETE FROM outbox_event WHERE keys IS NOT NULL",
    "ALTER TABLE outbox_event DROP CONSTRAINT ck_outbox_event_one_or_batch",
    "ALTER TABLE outbox_event DROP COLUMN events",
    "ALTER TABLE outbox_event DROP COLUMN envelopes",
    "ALTER TABLE outbox_event DROP COLUMN keys",
    "ALTER TABLE outbox_event ALTER COLUMN envelope SET NOT NULL",
)


# The keys sent as one text (crm_libs.text_lists), the envelopes packed on the same separator.
_SEPARATOR = text_lists.SEPARATOR
# zstd's fastest level: a chunk's envelopes are packed on the path every chunk of an import
# waits for (about 1 ms for 600 kB), and repeat enough to shrink sixfold even so.
_PACK_LEVEL = 1

# Since the packed batch rows (``PACKED_ROWS_SQL``): a batch row's envelopes are either the
# texts of ``envelopes`` (rows staged before, and the purchase import's) or one compressed text
# in ``envelopes_packed`` (``stage_batch``).
PACKED_CHECK = (
    "(envelope IS NULL) = (keys IS NOT NULL) "
    "AND (envelopes IS NULL OR envelopes_packed IS NULL) "
    "AND (keys IS NULL) = (envelopes IS NULL AND envelopes_packed IS NULL) "
    "AND (envelopes IS NULL OR cardinality(keys) = cardinality(envelopes)) "
    "AND events = COALESCE(cardinality(keys), 1)"
)
PACKED_ROWS_SQL = (
    "ALTER TABLE outbox_event ADD COLUMN envelopes_packed bytea",
    # Compressed already: stored out of line as it is.
    "ALTER TABLE outbox_event ALTER COLUMN envelopes_packed SET STORAGE EXTERNAL",
    "ALTER TABLE outbox_event DROP CONSTRAINT ck_outbox_event_one_or_batch",
    f"ALTER TABLE outbox_event ADD CONSTRAINT ck_outbox_event_one_or_batch CHECK ({PACKED_CHECK})",
)
# The way back, once ``unpack_rows`` has given every packed row its envelopes as texts.
DROP_PACKED_ROWS_SQL = (
    "ALTER TABLE outbox_event DROP CONSTRAINT ck_outbox_event_one_or_batch",
    "ALTER TABLE outbox_event DROP COLUMN envelopes_packed",
    f"ALTER TABLE outbox_event ADD CONSTRAINT ck_outbox_event_one_or_batch CHECK ({BATCH_CHECK})",
)


def pack_envelopes(envelopes: Sequence[str]) -> bytes:
    """A batch's envelopes as one zstd-compressed text, split on the separator (which no
    envelope holds: ``stage_batch`` checks)."""
    return bytes(cramjam.zstd.compress(_SEPARATOR.join(envelopes).encode(), level=_PACK_LEVEL))


def unpack_envelopes(packed: bytes) -> list[str]:
    """The envelopes ``pack_envelopes`` packed, in their order."""
    return bytes(cramjam.zstd.decompress(packed)).decode().split(_SEPARATOR)


def unpack_rows(bind: Any) -> None:
    """Every packed batch row given its envelopes as texts, on a migration's (synchronous)
    connection: the way back from ``PACKED_ROWS_SQL``, before ``DROP_PACKED_ROWS_SQL``."""
    rows = bind.execute(
        text("SELECT id, envelopes_packed FROM outbox_event WHERE envelopes_packed IS NOT NULL")
    ).all()
    for row_id, packed in rows:
        bind.execute(
            text(
                "UPDATE outbox_event SET envelopes = :envelopes, envelopes_packed = NULL "
                "WHERE id = :id"
            ),
            {"id": row_id, "envelopes": unpack_envelopes(bytes(packed))},
        )


class OutboxEvent(SQLModel, table=True):
    """One event to publish, or a batch of them (``stage_batch``). Published rows are kept for
    the retention period so that a broker that lost its data can be given them again; a row
    that keeps failing is parked."""

    __tablename__ = "outbox_event"
    __table_args__ = (
        # What the relay claims: the backlog only, however many published rows are retained.
        Index(
            "ix_outbox_event_unpublished",
            "id",
            postgresql_where=text("published_at IS NULL AND parked_at IS NULL"),
        ),
        # Rows waiting out a retry hold back their customer's later events (order per key).
        Index(
            "ix_outbox_event_retrying",
            "key",
            "id",
            postgresql_where=text(
                "published_at IS NULL AND parked_at IS NULL AND retry_at IS NOT NULL"
            ),
        ),
        Index("ix_outbox_event_parked", "id", postgresql_where=text("parked_at IS NOT NULL")),
        # The retention purge. A BRIN index (a few pages: rows are marked sent in about the
        # order they were staged) takes no entry for each row marked, as a btree did.
        Index("ix_outbox_event_published_at", "published_at", postgresql_using="brin"),
        CheckConstraint(PACKED_CHECK, name="ck_outbox_event_one_or_batch"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True)
    )
    # Not unique in the table: ids are random UUIDs made where the event is staged, and a
    # unique index cost each staged row and each row marked sent an entry in it.
    event_id: str = Field(sa_column=Column(Text, nullable=False))
    topic: str = Field(sa_column=Column(Text, nullable=False))
    key: str = Field(sa_column=Column(Text, nullable=False))
    # ``json``, not ``jsonb``: the relay sends the text as written, and parsing it into jsonb
    # (then printing it back for each claim) was most of what a staged event cost the server.
    # None in a batch row.
    envelope: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    # A batch row's events: their customers (``key`` is empty) and envelopes' JSON texts, in the
    # order they were staged. Stored out of line uncompressed (``BATCH_ROWS_SQL``): the relay's
    # mark leaves them where they are, and no compression is paid for on the way in.
    keys: list[str] | None = Field(default=None, sa_column=Column(ARRAY(Text)))
    envelopes: list[str] | None = Field(default=None, sa_column=Column(ARRAY(Text)))
    # Or the envelopes packed (``pack_envelopes``): what ``stage_batch`` writes. A thousand
    # envelopes are some 600 kB of text, about 100 kB packed: what the server writes out of
    # line, to its WAL, and reads back for the relay (the texts took a bulk writer's insert
    # 0.5 s per 100 rows, packed 0.12 s plus 0.1 s compressing them).
    envelopes_packed: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    # How many events the row holds: what the relay's claim counts, without reading ``keys``
    # (kilobytes out of line for each batch row of a backlog, at every claim).
    events: int = Field(
        default=1, sa_column=Column(Integer, nullable=False, server_default=text("1"))
    )
    created_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )
    published_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    # Not claimed again before this (a row that failed on its own, not with the whole broker).
    retry_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    # Set after too many failed attempts: the relay skips the row until an operator unparks it.
    parked_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class OutboxBrokerEpoch(SQLModel, table=True):
    """The marker this database's relay last left on the broker (one row).

    The embedded broker keeps everything in memory: when the marker record is gone, the broker
    lost what it was given, and the retained published rows are sent again.
    """

    __tablename__ = "outbox_broker_epoch"
    __table_args__ = (CheckConstraint("id = 1", name="ck_outbox_broker_epoch_single_row"),)

    id: int = Field(default=1, sa_column=Column(SmallInteger, primary_key=True))
    marker: str = Field(sa_column=Column(Text, nullable=False))
    marker_offset: int = Field(sa_column=Column(BigInteger, nullable=False))
    recorded_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )


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


# One statement for the whole list: an executemany would still execute one INSERT per row.
_ENQUEUE_MANY_SQL = text(
    """
    INSERT INTO outbox_event (event_id, topic, key, envelope)
    SELECT i, :topic, k, CAST(e AS json)
    FROM unnest(CAST(:ids AS text[]), CAST(:keys AS text[]), CAST(:envelopes AS text[]))
        AS t(i, k, e)
    """
)


async def enqueue_many(session: AsyncSession, *, topic: str, events: list[EventEnvelope]) -> None:
    """Stage many events with one INSERT (a tier recompute can move hundreds of customers)."""
    if not events:
        return
    await session.execute(
        _ENQUEUE_MANY_SQL,
        {
            "topic": topic,
            "ids": [str(e.event_id) for e in events],
            "keys": [e.customer_id for e in events],
            "envelopes": [e.to_bytes().decode() for e in events],
        },
    )


_STAGE_BATCH_SQL = f"""
    INSERT INTO outbox_event (event_id, topic, key, keys, envelopes_packed, events)
    VALUES ($1, $2, '', {text_lists.split_sql("$3")}, $4, $5)
"""  # noqa: S608 - only the split's constant expression is interpolated


async def stage_batch(conn: Any, *, topic: str, events: Sequence[tuple[str, str, str]]) -> None:
    """Stage many events of one topic as one row, ``(event_id, key, envelope JSON text)`` each,
    on the asyncpg connection of the surrounding transaction.

    For bulk writers (an import stages a chunk's thousand registrations so): one row to write,
    claim and mark sent instead of a thousand, each a full row version through the table's
    indexes. The relay sends each event as if it had its own row, on its customer's
    partition; a later event of any of its customers waits while the row waits for a retry.

    The envelopes are stored packed (``pack_envelopes``), the keys as an array the relay's
    claim reads. The writer's transaction may commit asynchronously (``synchronous_commit =
    off``: no wait for the WAL's flush, a chunk's few megabytes of it): the relay makes the
    commits it claimed durable before it sends a batch row's events.
    """
    if not events:
        return
    keys = [key for _, key, _ in events]
    envelopes = [envelope for _, _, envelope in events]
    if any(not key or _SEPARATOR in key for key in keys) or any(
        _SEPARATOR in envelope for envelope in envelopes
    ):
        # string_to_array and unpack_envelopes would split such a value, and string_to_array
        # read a single empty one as no value.
        raise ValueError("an outbox key or envelope holds the separator, or a key is empty")
    await conn.execute(
        _STAGE_BATCH_SQL,
        events[0][0],
        topic,
        text_lists.joined(keys),
        pack_envelopes(envelopes),
        len(events),
    )


_PURGE_SQL = text(
    """
    DELETE FROM outbox_event WHERE id IN (
        SELECT id FROM outbox_event
        WHERE published_at < now() - make_interval(secs => :retention_seconds)
        ORDER BY id
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    """
)


async def purge_published(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    retention_seconds: float,
    batch_size: int = 5000,
) -> int:
    """Delete rows published longer ago than the retention, a batch per transaction.

    Replicas may purge at the same time: SKIP LOCKED lets each take rows the other has not.
    """
    purged = 0
    while True:
        async with sessionmaker() as session, session.begin():
            result = await session.execute(
                _PURGE_SQL, {"retention_seconds": retention_seconds, "limit": batch_size}
            )
        deleted = int(result.rowcount)  # type: ignore[attr-defined]
        purged += deleted
        if deleted < batch_size:
            return purged


# An operator unparks rows once the cause is fixed (topic created, payload trimmed):
#   UPDATE outbox_event SET parked_at = NULL, attempts = 0, retry_at = NULL WHERE id = ...;
# the relay sends them with the next batch.
_UNPARK_SQL = text(
    """
    UPDATE outbox_event SET parked_at = NULL, attempts = 0, retry_at = NULL
    WHERE parked_at IS NOT NULL AND (CAST(:ids AS bigint[]) IS NULL OR id = ANY(:ids))
    """
)


async def unpark(session: AsyncSession, *, ids: list[int] | None = None) -> int:
    """Give parked rows (these, or all) back to the relay; returns how many."""
    result = await session.execute(_UNPARK_SQL, {"ids": ids})
    return int(result.rowcount)  # type: ignore[attr-defined]
