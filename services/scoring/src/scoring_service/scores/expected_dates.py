"""The two dates care plans by (deploy/README.md, ``crm.scores.v1``): the supply run-out and
the expected next purchase, kept per customer and published on every ``score.changed``.

**Expected date** (the four consumption values, DOMAIN.md §3): the supply run-out, or the
store's next member event before it when one exists: the earliest not cancelled whose day in
the store's time zone is today or later and no later than the run-out day (invited then, the
customer buys at the event rather than elsewhere). By the day, not the hour, so it moves only
when a purchase, a refund, a merge or a member event moves it, or at the store's midnight
(the daily ageing) when an event's day has passed. None without a run-out (a prospect, or
every purchase refunded). :func:`expected_sql` is the one definition: the batch's statement
(scores/batch_add.py) and :func:`publish_moved_dates` compute it with it, store it in
``customer_score.expected_purchase_on``, and the score's read shows the stored value.

**Publishing**: a consumed batch's statement publishes its buyers' new dates with the rest of
their change (one ``score.changed`` per customer). Everything else that moves a run-out
(aggregates rebuilt after a back-dated purchase, a refund, a merge, a recompute) or the
expected date (a member event scheduled or cancelled, an event's day passing) is followed by
:func:`publish_moved_dates`: one statement over the customers concerned that stages a
``score.changed`` for each whose dates differ from those last published
(``announced_runs_out_on``, ``expected_purchase_on``). Run again, it finds nothing to publish.
"""

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from scoring_service.scores import events, history


def expected_sql(*, store: str, runs_out: str, timezone: str, today: str) -> str:
    """SQL for the expected purchase date of a customer of ``store`` whose supply runs out on
    ``runs_out`` (SQL expressions; ``today``: the store's local day). One probe of the member
    events' (store_id, starts_at) index, only for a run-out today or later."""
    return f"""CASE WHEN {runs_out} >= {today} THEN COALESCE((
        SELECT CAST(me.starts_at AT TIME ZONE {timezone} AS date) FROM member_event AS me
        WHERE me.store_id = {store} AND me.cancelled_at IS NULL
          AND me.starts_at >= CAST({today} AS timestamp) AT TIME ZONE {timezone}
          AND me.starts_at < CAST({runs_out} + 1 AS timestamp) AT TIME ZONE {timezone}
        ORDER BY me.starts_at, me.event_id LIMIT 1), {runs_out})
    ELSE {runs_out} END"""  # noqa: S608 (only the caller's SQL expressions are interpolated)


# Which customers may have moved dates: those given ($1), or the customers of the stores given
# ($2) whose dates can have moved without a purchase of theirs: the run-out not the one last
# published (a rebuild moved it), the expected date not the run-out (an event's day passed, or
# the event was cancelled), and with $5 (a store's member events changed) every run-out from
# today on (an event may now come before it). $3 now, $4 the cause where none was declared.
_MOVED_DATES_SQL = f"""
    WITH candidates AS (
        SELECT cs.customer_id, cs.supply_runs_out_on, cs.expected_purchase_on,
               cs.announced_runs_out_on,
               {
    expected_sql(
        store="cs.store_id",
        runs_out="cs.supply_runs_out_on",
        timezone="cs.timezone",
        today="CAST($3::timestamptz AT TIME ZONE cs.timezone AS date)",
    )
} AS new_expected
        FROM customer_score AS cs
        WHERE cs.customer_id = ANY($1::text[])
           OR (cs.store_id = ANY($2::text[])
               AND (cs.supply_runs_out_on IS DISTINCT FROM cs.announced_runs_out_on
                    OR cs.supply_runs_out_on IS DISTINCT FROM cs.expected_purchase_on
                    OR ($5::boolean AND cs.supply_runs_out_on
                                        >= CAST($3::timestamptz AT TIME ZONE cs.timezone AS date))))
    ), dated AS (
        UPDATE customer_score AS cs SET
            expected_purchase_on = c.new_expected,
            announced_runs_out_on = cs.supply_runs_out_on,
            version = cs.version + 1, computed_at = $3
        FROM candidates AS c
        WHERE cs.customer_id = c.customer_id
          AND (c.new_expected IS DISTINCT FROM c.expected_purchase_on
               OR c.supply_runs_out_on IS DISTINCT FROM c.announced_runs_out_on)
        RETURNING cs.customer_id, cs.store_id, cs.value_tier AS previous_tier, cs.value_tier,
                  cs.version, cs.net_spend_365d, cs.ladder_level,
                  cs.ladder_level AS previous_ladder_level, cs.ladder_score, cs.lifecycle,
                  cs.lifecycle AS previous_lifecycle,
                  COALESCE({history.DECLARED_CAUSE_SQL}, $4) AS cause,
                  cs.supply_runs_out_on, cs.expected_purchase_on
    ), {events.staging_sql("dated", classified=True)}
    SELECT count(*) FROM dated
"""  # noqa: S608 (only constants and this module's SQL are interpolated)


async def publish_moved_dates(
    db: asyncpg.Connection,
    *,
    now: datetime,
    cause: str,
    customer_ids: Sequence[str] = (),
    store_ids: Sequence[str] = (),
    events_changed: bool = False,
) -> int:
    """Store and publish the dates of these customers, or of these stores' customers whose
    dates may have moved (with ``events_changed``: every one whose supply lasts to today or
    later), where they differ from those last published; how many ``score.changed`` it staged.
    ``cause`` where the transaction declared none. The caller holds the stores' locks."""
    if not customer_ids and not store_ids:
        return 0
    return int(
        await db.fetchval(
            _MOVED_DATES_SQL,
            list(dict.fromkeys(customer_ids)),
            sorted(set(store_ids)),
            now,
            cause,
            events_changed,
        )
    )
