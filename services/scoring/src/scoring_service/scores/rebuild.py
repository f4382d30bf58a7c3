"""Aggregates rebuilt from the stored facts: after a back-dated purchase, a refund, a merge,
and by a store's recompute."""

from collections.abc import Sequence
from datetime import datetime

import asyncpg

# Aggregates rebuilt from all of their customers' stored purchases, set-based: what
# Aggregate.rebuild folds purchase by purchase, in one statement for any number of customers.
# The fold r = max(day, r) + supply, over the purchases in date order, unrolls to
# max over k of (day_k + supply bought from k on) = all supply + max over k of (day_k + supply_k
# - supply bought up to k): one running sum, no loop. A wholly refunded purchase (no days left)
# is no purchase: not counted, not dated, no k of the fold (scores/refund_facts.py). The time
# zone is the last purchase's (the row with no next one), ties broken by id bytewise as
# PurchaseSeen.date_order does; one window gives both. Only rows that differ are written (a
# store's recompute of correct aggregates writes nothing). {source} selects the facts; $2
# since, $3 now.
_REBUILD_SQL = """
    WITH facts AS (
        SELECT f.customer_id, f.purchased_at, f.purchased_on, f.timezone, f.total,
               f.supply_days, NOT f.wholly_refunded AS kept,
               sum(f.supply_days) OVER w AS supply_to_here,
               lead(f.purchase_id) OVER w IS NULL AS is_last,
               f.purchased_at > COALESCE($3::timestamptz - r.window_days * interval '24 hours', $2)
                   AS in_window
        FROM purchase_fact AS f
        LEFT JOIN store_tier_rules AS r ON r.store_id = f.store_id  -- its own window
        WHERE {source}
        WINDOW w AS (PARTITION BY f.customer_id
                     ORDER BY f.purchased_at, f.purchase_id COLLATE "C" ROWS UNBOUNDED PRECEDING)
    ), rebuilt AS (
        SELECT customer_id, min(timezone) FILTER (WHERE is_last) AS timezone,
               count(*) FILTER (WHERE kept) AS purchases,
               min(purchased_at) FILTER (WHERE kept) AS first_at,
               max(purchased_at) FILTER (WHERE kept) AS last_at,
               max(purchased_on + supply_days - CAST(supply_to_here AS integer))
                   FILTER (WHERE kept) + CAST(sum(supply_days) AS integer) AS runs_out,
               COALESCE(sum(total) FILTER (WHERE in_window), 0) AS spend
        FROM facts
        GROUP BY customer_id
    )
    UPDATE customer_score AS cs SET
        timezone = b.timezone,
        purchase_count = b.purchases,
        first_purchase_at = b.first_at,
        last_purchase_at = b.last_at,
        supply_runs_out_on = b.runs_out,
        net_spend_365d = b.spend,
        computed_at = $3
    FROM rebuilt AS b
    WHERE cs.customer_id = b.customer_id
      AND (cs.timezone, cs.purchase_count, cs.first_purchase_at, cs.last_purchase_at,
           cs.supply_runs_out_on, cs.net_spend_365d)
          IS DISTINCT FROM (b.timezone, b.purchases, b.first_at, b.last_at, b.runs_out, b.spend)
"""
_REBUILD_CUSTOMERS_SQL = _REBUILD_SQL.format(source="f.customer_id = ANY($1::text[])")
# A whole store: its customers are those of its score rows (a merge moves facts between them).
_REBUILD_STORE_SQL = _REBUILD_SQL.format(
    source="f.customer_id IN (SELECT customer_id FROM customer_score WHERE store_id = $1)"
)


async def rebuild_aggregates(
    db: asyncpg.Connection,
    *,
    since: datetime,
    now: datetime,
    customer_ids: Sequence[str] | None = None,
    store_id: str | None = None,
) -> int:
    """Recompute the aggregates of these customers, or of every customer of ``store_id``, from
    all their stored purchases in purchase-date order; returns how many rows it corrected.

    The caller holds the stores' locks."""
    if (customer_ids is None) == (store_id is None):
        raise ValueError("rebuild_aggregates takes customer_ids or store_id, not both")
    if customer_ids is not None:
        status = await db.execute(_REBUILD_CUSTOMERS_SQL, list(customer_ids), since, now)
    else:
        status = await db.execute(_REBUILD_STORE_SQL, store_id, since, now)
    return int(status.rsplit(" ", 1)[-1])
