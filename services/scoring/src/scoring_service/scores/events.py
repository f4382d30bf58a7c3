"""``score.changed``: published when a customer's tier changes, theirs or pushed by others.

A re-rank can move thousands of customers, so the outbox rows are written by the statement that
moves them (:func:`staging_sql`): no row crosses to Python and back, and there is one INSERT
per batch however many tiers moved.
"""

from decimal import Decimal

import msgspec

from crm_libs.events.envelope import Topics

SCORE_CHANGED = "score.changed"


class TierChange(msgspec.Struct, frozen=True, gc=False):
    """A tier that moved (a re-rank returns thousands: not tracked by the garbage collector)."""

    customer_id: str
    store_id: str
    previous_tier: str | None
    value_tier: str
    version: int
    net_spend_365d: Decimal


# The EventEnvelope of score.changed, built in SQL (tests/test_batch_statements.py parses it
# back with EventEnvelope). occurred_at in UTC with a Z, as pydantic writes it.
_TIER_PAYLOAD_SQL = """
    'value_tier', e.value_tier, 'previous_tier', e.previous_tier, 'version', e.version,
    'net_spend_365d', CAST(round(e.net_spend_365d, 2) AS text)
"""
# The current ladder and lifecycle, what they were, and why (deploy/README.md, crm.scores.v1).
_CLASSIFIED_PAYLOAD_SQL = """,
    'ladder_level', e.ladder_level, 'previous_ladder_level', e.previous_ladder_level,
    'ladder_score', e.ladder_score,
    'lifecycle', e.lifecycle, 'previous_lifecycle', e.previous_lifecycle, 'cause', e.cause
"""


def _envelope_sql(*, classified: bool) -> str:
    payload = _TIER_PAYLOAD_SQL + (_CLASSIFIED_PAYLOAD_SQL if classified else "")
    return f"""
    jsonb_build_object(
        'event_id', e.event_id, 'type', '{SCORE_CHANGED}', 'version', 1,
        'occurred_at', e.occurred_at,
        'store_id', e.store_id, 'customer_id', e.customer_id,
        'payload', jsonb_build_object({payload})
    )
    """


def staging_sql(changes: str, *, classified: bool = False) -> str:
    """CTEs (to follow a ``WITH``) that stage one ``score.changed`` per row of ``changes``.

    ``changes`` names an earlier CTE with the columns of :class:`TierChange` (a constant of the
    caller's SQL, never a value); with ``classified`` also ``ladder_level``,
    ``previous_ladder_level``, ``ladder_score``, ``lifecycle``, ``previous_lifecycle`` and
    ``cause``, which the event then carries.

    Event ids: one random UUID per statement, its last twelve hex digits replaced by the row's
    number in the statement. Unique within the statement by the number, across statements by
    the 74 random bits left (version and variant kept, so still a UUID); a random UUID per row
    cost more than the rest of the row where PostgreSQL reads the kernel's random source for
    each (a build without OpenSSL, like the embedded one). The time is formatted once too."""
    return f"""
    score_stamp AS (
        SELECT CAST(gen_random_uuid() AS text) AS random_id,
               to_char(statement_timestamp() AT TIME ZONE 'UTC',
                       'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS occurred_at
    ), score_event AS (
        SELECT overlay(s.random_id PLACING lpad(to_hex(row_number() OVER ()), 12, '0')
                       FROM 25) AS event_id,
               s.occurred_at, c.*
        FROM {changes} AS c CROSS JOIN score_stamp AS s
    ), staged AS (
        INSERT INTO outbox_event (event_id, topic, key, envelope)
        SELECT e.event_id, '{Topics.SCORES}', e.customer_id, {_envelope_sql(classified=classified)}
        FROM score_event AS e
    )
    """  # noqa: S608
