"""The relay's statements on ``outbox_event``: the leader's lock, the claim, marking rows sent,
a row's failure recorded (a retry or parked), the counts for the gauges."""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.relay_metrics import PARKED

# The relay's logger: its records keep the name operators filter on.
log = logging.getLogger("crm_libs.events.relay")

# Only the replica holding it publishes (per database: advisory locks are database-scoped).
LEADER_SQL = text("SELECT pg_try_advisory_xact_lock(hashtextextended('crm.outbox.relay', 0))")

# In id order, skipping rows that wait for a retry and every later row of the same customer.
# The envelope comes as its JSON text, sent as it is: no object built and serialised again.
# Both on the asyncpg connection itself: two thousand rows as SQLAlchemy rows cost more Python
# than sending them. No row locks: the claim, the sends' outcomes and the epoch check run only in
# the leader's transaction (``LEADER_SQL``), and nothing else writes an unpublished, unparked
# row; locking each claimed row wrote every row once more (and its page to the WAL after a
# checkpoint) before the mark wrote it again, a third of what publishing cost PostgreSQL.
CLAIM_SQL = """
    WITH waiting AS MATERIALIZED (
        SELECT key, min(id) AS first_id FROM outbox_event
        WHERE published_at IS NULL AND parked_at IS NULL AND retry_at IS NOT NULL
          AND retry_at > now()
        GROUP BY key
    )
    SELECT o.id, o.event_id, o.topic, o.key, CAST(o.envelope AS text) AS envelope
    FROM outbox_event o
    WHERE o.published_at IS NULL AND o.parked_at IS NULL
      AND (o.retry_at IS NULL OR o.retry_at <= now())
      AND NOT EXISTS (SELECT 1 FROM waiting w WHERE w.key = o.key AND w.first_id < o.id)
    ORDER BY o.id
    LIMIT $1
"""
MARK_SENT_SQL = """
    UPDATE outbox_event SET published_at = now(), attempts = attempts + 1, retry_at = NULL
    WHERE id = ANY($1::bigint[])
"""


class ClaimedRow(NamedTuple):
    """A claimed outbox row."""

    id: int
    event_id: str
    topic: str
    key: str
    envelope: str  # the JSON text, sent as it is


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
        (SELECT count(*) FROM outbox_event WHERE published_at IS NULL AND parked_at IS NULL),
        (SELECT count(*) FROM outbox_event WHERE parked_at IS NOT NULL)
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
    """Count a row's failed send: a retry after a backoff, or parked after ``max_attempts``."""
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
        "attempts": attempts,
        "error": error,
    }
    if parked:
        PARKED.labels(topic=row.topic).inc()
        log.error("outbox event parked after repeated failures", extra={"fields": fields})
    else:
        log.warning("outbox event failed, will retry", extra={"fields": fields})
