"""Stores ranked whole: after a merge, the window's ageing, a recompute (spend moved all over
the store), where a batch's add (scores/batch_add.py) ranks only what a threshold crossed."""

from collections.abc import Iterable
from datetime import date, datetime

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.driver import driver_connection
from scoring_service.scores import events
from scoring_service.scores.store_locks import lock_stores_on
from scoring_service.scores.tiers import (
    INACTIVE,
    PROSPECT,
    TIERS,
    bounds_parameters,
    bounds_sql,
    rank_case_sql,
    window_start,
)

# Rank every spender of the stores in one statement (after a merge, or the window's ageing:
# spend moved all over the store): rank()-1 is "how many spend strictly more", so ties share a
# tier. Only customers with spend in the window are ranked (the rest are inactive: no window
# function over them); only rows whose tier moved are written, and their score.changed rows are
# staged by the same statement. Partitions compare store ids bytewise (COLLATE "C"): any order
# groups them, and it is the cheapest. Only constants are interpolated (the tier names and
# CASE from tiers.py, the staging CTEs from events.py).
# $1 now, $2.. the stores and their bounds (tiers.bounds_parameters).
RERANK_SQL = f"""
    WITH ranked AS (
        SELECT cs.customer_id, cs.value_tier AS previous_tier, cs.net_spend_365d,
               rank() OVER (PARTITION BY cs.store_id COLLATE "C"
                            ORDER BY cs.net_spend_365d DESC) - 1 AS greater,
               count(*) OVER (PARTITION BY cs.store_id COLLATE "C") AS spenders,
               {", ".join(f"sb.bound_{i + 1}" for i in range(len(TIERS)))}
        FROM {bounds_sql(2)}
        JOIN customer_score AS cs ON cs.store_id = sb.store_id
        WHERE cs.purchase_count > 0 AND cs.net_spend_365d > 0
    ), tiered AS (
        SELECT customer_id, previous_tier, net_spend_365d,
               {rank_case_sql(greater="greater", spenders="spenders", bounds="ranked")} AS tier
        FROM ranked
        UNION ALL
        -- No spend: inactive, or a prospect again when every purchase was refunded
        -- (scores/refund_facts.py).
        SELECT customer_id, value_tier, net_spend_365d,
               CASE WHEN purchase_count > 0 THEN '{INACTIVE}' ELSE '{PROSPECT}' END
        FROM customer_score
        WHERE store_id = ANY($2::text[]) AND net_spend_365d <= 0
          AND value_tier IS DISTINCT FROM
              CASE WHEN purchase_count > 0 THEN '{INACTIVE}' ELSE '{PROSPECT}' END
    ), moved AS (
        UPDATE customer_score AS cs
        SET value_tier = t.tier, version = cs.version + 1, computed_at = $1
        FROM (SELECT * FROM tiered WHERE previous_tier IS DISTINCT FROM tier) AS t
        WHERE cs.customer_id = t.customer_id AND cs.value_tier IS DISTINCT FROM t.tier
        RETURNING cs.customer_id, cs.store_id, t.previous_tier, t.tier AS value_tier,
                  cs.version, t.net_spend_365d
    ), {events.staging_sql("moved")}
    SELECT customer_id, store_id, previous_tier, value_tier, version, net_spend_365d FROM moved
"""  # noqa: S608

# A whole store's spend in the trailing window, in one statement (no list of its customers
# through Python), written only where it moved: a refresh of a store of a million customers
# rewrote every row each hour. $1 store, $2 since (the default window; the store's own replaces
# it), $3 now.
_WINDOW_SPEND_SQL = """
    UPDATE customer_score AS cs
    SET net_spend_365d = s.spend, computed_at = $3
    FROM (
        SELECT c.customer_id, COALESCE(SUM(f.total), 0) AS spend
        FROM customer_score AS c
        LEFT JOIN purchase_fact AS f ON f.customer_id = c.customer_id
            AND f.purchased_at > COALESCE(
                $3::timestamptz
                - (SELECT window_days FROM store_tier_rules WHERE store_id = $1)
                     * interval '24 hours',
                $2)
        WHERE c.store_id = $1
        GROUP BY c.customer_id
    ) AS s
    WHERE cs.customer_id = s.customer_id AND cs.net_spend_365d IS DISTINCT FROM s.spend
"""


async def rerank(
    db: asyncpg.Connection, store_ids: Iterable[str], *, now: datetime
) -> list[events.TierChange]:
    """Recompute the pyramid of the stores; stage an event for every customer whose tier moved.

    One statement for all of them. The caller holds the stores' locks."""
    stores = sorted(set(store_ids))
    if not stores:
        return []
    rows = await db.fetch(RERANK_SQL, now, *bounds_parameters(stores))
    return [events.TierChange(**r) for r in rows]


async def refresh_windows(
    session: AsyncSession, *, store_id: str, as_of: date | None = None
) -> int:
    """Let purchases age out of the trailing window for a whole store, then re-rank it.

    The store's lock first: spend written back by this refresh must include every purchase
    committed before it (an UPDATE that waited for a row would otherwise write the sum it
    computed before that purchase committed)."""
    db = await driver_connection(session)
    await lock_stores_on(db, [store_id])
    now, since = window_start(as_of)
    await db.execute(_WINDOW_SPEND_SQL, store_id, since, now)
    return len(await rerank(db, [store_id], now=now))
