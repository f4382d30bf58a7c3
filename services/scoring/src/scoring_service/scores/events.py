"""``score.changed``: published when a customer's tier changes, theirs or pushed by others, when
their ladder or lifecycle changes (scores/classify.py), and when their supply run-out or
expected purchase date moves (scores/expected_dates.py).

A re-rank can move thousands of customers, so the outbox rows are written by the statement that
moves them (:func:`staging_sql`): no row crosses to Python and back, and there is one INSERT
per batch however many tiers moved.
"""

from decimal import Decimal

import msgspec

from crm_libs.events.envelope import Topics
from crm_libs.events.event_types import SCORE_CHANGED
from scoring_service.scores import history
from scoring_service.scores.tiers import PROSPECT


class TierChange(msgspec.Struct, frozen=True, gc=False):
    """A tier that moved (a re-rank returns thousands: not tracked by the garbage collector)."""

    customer_id: str
    store_id: str
    previous_tier: str | None
    value_tier: str
    version: int
    net_spend_365d: Decimal


# The EventEnvelope of score.changed, built in SQL (tests/test_batch_statements.py parses it
# back with EventEnvelope). occurred_at in UTC with a Z, as pydantic writes it. Every event
# carries the current tier, ladder and lifecycle, what each was before and the cause
# (deploy/README.md, crm.scores.v1): a value that did not change has itself as previous value;
# and the supply run-out and expected purchase date as the row holds them
# (scores/expected_dates.py).
_ENVELOPE_SQL = f"""
    jsonb_build_object(
        'event_id', e.event_id, 'type', '{SCORE_CHANGED}', 'version', 1,
        'occurred_at', e.occurred_at,
        'store_id', e.store_id, 'customer_id', e.customer_id,
        'payload', jsonb_build_object(
            'value_tier', e.value_tier, 'previous_tier', e.previous_tier, 'version', e.version,
            'net_spend_365d', CAST(round(e.net_spend_365d, 2) AS text),
            'ladder_level', e.ladder_level, 'previous_ladder_level', e.previous_ladder_level,
            'ladder_score', e.ladder_score,
            'lifecycle', e.lifecycle, 'previous_lifecycle', e.previous_lifecycle,
            'cause', e.cause,
            'supply_runs_out_on', e.supply_runs_out_on,
            'expected_purchase_on', e.expected_purchase_on
        )
    )
"""

# A tier change's ladder and lifecycle, as the statement found them (it does not change them),
# and its cause (scores/history.py). A file just registered as a prospect is no change to
# record in the history.
_TIER_COLUMNS_SQL = f"""
    k.ladder_level, k.ladder_level AS previous_ladder_level, k.ladder_score,
    k.lifecycle, k.lifecycle AS previous_lifecycle, {history.tier_cause_sql("c")} AS cause,
    k.supply_runs_out_on, k.expected_purchase_on
"""
_TIER_HISTORY_SQL = f"""
    , tier_history AS (
        INSERT INTO score_history (customer_id, store_id, field, previous, value, cause)
        SELECT customer_id, store_id, 'value_tier', previous_tier, value_tier, cause
        FROM score_event
        WHERE previous_tier IS DISTINCT FROM value_tier
          AND NOT (previous_tier IS NULL AND value_tier = '{PROSPECT}')
    )
"""  # noqa: S608


def staging_sql(changes: str, *, classified: bool = False) -> str:
    """CTEs (to follow a ``WITH``) that stage one ``score.changed`` per row of ``changes`` and,
    for tier changes, write their history rows.

    ``changes`` names an earlier CTE with the columns of :class:`TierChange` (a constant of the
    caller's SQL, never a value). With ``classified`` (scores/classify.py) it also has
    ``ladder_level``, ``previous_ladder_level``, ``ladder_score``, ``lifecycle``,
    ``previous_lifecycle``, ``cause``, ``supply_runs_out_on`` and ``expected_purchase_on`` and
    writes its own history; otherwise the tiers moved and the ladder, lifecycle and dates are
    read from the customer's stored score (as the statement found it: a statement that moves
    the run-out without publishing it is followed by expected_dates.publish_moved_dates).

    Event ids: one random UUID per statement, its last twelve hex digits replaced by the row's
    number in the statement. Unique within the statement by the number, across statements by
    the 74 random bits left (version and variant kept, so still a UUID); a random UUID per row
    cost more than the rest of the row where PostgreSQL reads the kernel's random source for
    each (a build without OpenSSL, like the embedded one). The time is formatted once too."""
    columns = "" if classified else f", {_TIER_COLUMNS_SQL}"
    joined = "" if classified else "LEFT JOIN customer_score AS k ON k.customer_id = c.customer_id"
    return f"""
    score_stamp AS (
        SELECT CAST(gen_random_uuid() AS text) AS random_id,
               to_char(statement_timestamp() AT TIME ZONE 'UTC',
                       'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS occurred_at
    ), score_event AS (
        SELECT overlay(s.random_id PLACING lpad(to_hex(row_number() OVER ()), 12, '0')
                       FROM 25) AS event_id,
               s.occurred_at, c.* {columns}
        FROM {changes} AS c CROSS JOIN score_stamp AS s {joined}
    ), staged AS (
        INSERT INTO outbox_event (event_id, topic, key, envelope)
        SELECT e.event_id, '{Topics.SCORES}', e.customer_id, {_ENVELOPE_SQL}
        FROM score_event AS e
    ) {"" if classified else _TIER_HISTORY_SQL}
    """  # noqa: S608
