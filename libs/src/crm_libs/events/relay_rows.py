"""The relay's statements on ``outbox_event``: the leader's lock, the claim, marking rows sent,
a row's failure recorded (a retry or parked), the counts for the gauges."""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.outbox import unpack_envelopes
from crm_libs.events.relay_metrics import PARKED

# The relay's logger: its records keep the name operators filter on.
log = logging.getLogger("crm_libs.events.relay")

# Only the replica holding it publishes (per database: advisory locks are database-scoped).
LEADER_SQL = text("SELECT pg_try_advisory_xact_lock(hashtextextended('crm.outbox.relay', 0))")

# In id order, skipping rows that wait for a retry and every later row of the same customer (a
# batch row, one of many events: of any of its customers). The envelope comes as its JSON text,
# sent as it is: no object built and serialised again; a batch row's keys come as an array, its
# envelopes as one too or packed (outbox.pack_envelopes). A claim holds at most ``$1`` events,
# whole rows in id order (a first row of more goes alone): the running count of each row's
# ``events`` is taken over the first ``$1`` rows, before any key or envelope is read.
# Both on the asyncpg connection itself: two thousand rows as SQLAlchemy rows cost more Python
# than sending them. No row locks: the claim, the sends' outcomes and the epoch check run only in
# the leader's transaction (``LEADER_SQL``), and nothing else writes an unpublished, unparked
# row; locking each claimed row wrote every row once more (and its page to the WAL after a
# checkpoint) before the mark wrote it again, a third of what publishing cost PostgreSQL.
CLAIM_SQL = """
    WITH waiting AS MATERIALIZED (
        SELECT k AS key, min(id) AS first_id
        FROM outbox_event, unnest(COALESCE(keys, ARRAY[key])) AS k
        WHERE published_at IS NULL AND parked_at IS NULL AND retry_at IS NOT NULL
          AND retry_at > now()
        GROUP BY k
    ), head AS (
        SELECT o.id, sum(o.events) OVER (ORDER BY o.id) AS events
        FROM outbox_event o
        WHERE o.published_at IS NULL AND o.parked_at IS NULL
          AND (o.retry_at IS NULL OR o.retry_at <= now())
          AND NOT EXISTS (SELECT 1 FROM waiting w WHERE w.key = o.key AND w.first_id < o.id)
          AND (o.keys IS NULL OR NOT EXISTS (
              SELECT 1 FROM waiting w WHERE w.key = ANY(o.keys) AND w.first_id < o.id))
        ORDER BY o.id
        LIMIT $1
    )
    SELECT o.id, o.event_id, o.topic, o.key, CAST(o.envelope AS text) AS envelope,
           o.keys, o.envelopes, o.envelopes_packed
    FROM head h JOIN outbox_event o ON o.id = h.id
    WHERE h.events <= $1 OR h.id = (SELECT min(id) FROM head)
    ORDER BY o.id
"""
MARK_SENT_SQL = """
    UPDATE outbox_event SET published_at = now(), attempts = attempts + 1, retry_at = NULL
    WHERE id = ANY($1::bigint[])
"""


# The relay's durability barrier (relay.OutboxRelay._make_durable): a transaction that writes
# to the WAL (a transaction id alone does not) and commits synchronously flushes it up to its
# commit. What it writes is a claimed row's version again, unchanged: the row exists, and nothing
# but the leader writes an unpublished one.
SYNCHRONOUS_SQL = text("SET LOCAL synchronous_commit = on")
DURABLE_SQL = text("UPDATE outbox_event SET attempts = attempts WHERE id = :id")


class ClaimedRow(NamedTuple):
    """A claimed outbox row: one event, or a batch of them (``keys``, and ``envelopes`` or
    ``packed``)."""

    id: int
    event_id: str  # a batch row's: its first event's
    topic: str
    key: str  # a batch row's: empty
    envelope: str | None  # the JSON text, sent as it is; a batch row's: None
    keys: list[str] | None = None
    envelopes: list[str] | None = None
    packed: bytes | None = None  # a batch row's envelopes, packed (outbox.pack_envelopes)

    @property
    def events(self) -> int:
        return len(self.keys) if self.keys is not None else 1

    def messages(self) -> list[tuple[str, str]]:
        """The row's events as (key, envelope text), in the order they were staged."""
        if self.keys is None:
            return [(self.key, self.envelope or "")]
        envelopes = self.envelopes if self.packed is None else unpack_envelopes(self.packed)
        if envelopes is None:
            raise ValueError(f"outbox row {self.id} has keys but no envelopes")
        return list(zip(self.keys, envelopes, strict=True))


RECORD_FAILURE_SQL = text(
    """
    UPDATE outbox_event SET
        attempts = attempts + 1,
        last_error = :error,
        parked_at = CASE WHEN attempts + 1 >= :max_attempts THEN now() END,
        retry_at = CASE WHEN attempts + 1 < :max_attempts
            THEN now() + make_interval(secs => least(:base * power(2, attempts), :cap)) END
    WHERE id = :id
    RETURNING attempts, parked_at IS NOT NULL AS parked
    """
)
COUNTS_SQL = text(
    """
    SELECT
        (SELECT COALESCE(sum(events), 0) FROM outbox_event
         WHERE published_at IS NULL AND parked_at IS NULL),
        (SELECT COALESCE(sum(events), 0) FROM outbox_event WHERE parked_at IS NOT NULL)
    """
)


async def record_failure(
    session: AsyncSession,
    *,
    row_id: int,
    row: Any,
    error: str,
    max_attempts: int,
    retry_base: float,
    retry_cap: float,
) -> None:
    """Count a row's failed send: a retry after a backoff, or parked after ``max_attempts``
    (a batch row's events all together)."""
    attempts, parked = (
        await session.execute(
            RECORD_FAILURE_SQL,
            {
                "id": row_id,
                "error": error[:500],
                "max_attempts": max_attempts,
                "base": retry_base,
                "cap": retry_cap,
            },
        )
    ).one()
    fields = {
        "outbox_id": row_id,
        "event_id": row.event_id,
        "topic": row.topic,
        "events": row.events,
        "attempts": attempts,
        "error": error,
    }
    if parked:
        PARKED.labels(topic=row.topic).inc(row.events)
        log.error("outbox event parked after repeated failures", extra={"fields": fields})
    else:
        log.warning("outbox event failed, will retry", extra={"fields": fields})
