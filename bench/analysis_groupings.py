"""The analysis benchmark's comparison with the statements the read model and the groupings
replaced: each grouping over the whole period against the one it replaced, same rows."""

from __future__ import annotations

import argparse
from typing import Any

import asyncpg
from analysis_data import period
from support import log, percentile_ms, timed

from crm_devstack.stack import LocalStack
from crm_libs.db import asyncpg_dsn
from scoring_service.analysis import consumption
from scoring_service.analysis.planning import planned_per_call

# The statement consumption by month ran before the read model (for comparison): every purchase
# sorted by a text month and customer for its distinct customers.
OLD_MONTH_SQL = """
    SELECT to_char(pf.purchased_on, 'YYYY-MM') AS key, count(DISTINCT pf.customer_id) AS customers,
           count(*) AS purchases, sum(pf.total) AS revenue
    FROM purchase_fact pf
    WHERE pf.store_id = $1 AND pf.purchased_on BETWEEN $2 AND $3 AND NOT pf.wholly_refunded
    GROUP BY 1
"""


# The other groupings' statements before (count(DISTINCT) of the period's purchases per key),
# as consumption.py's _BY_PURCHASE and _LINE_SQL were: the key and its join.
_OLD_KEYS = {
    "tier": ("s.value_tier", "LEFT JOIN customer_score s ON s.customer_id = pf.customer_id"),
    "staff": ("a.staff_id", "LEFT JOIN analysis_sale_staff a ON a.purchase_id = pf.purchase_id"),
    "region": (
        "d.district",
        "LEFT JOIN analysis_customer_district d ON d.customer_id = pf.customer_id",
    ),
}
_OLD_PURCHASE_SQL = """
    SELECT {key} AS key, count(DISTINCT pf.customer_id) AS customers, count(*) AS purchases,
           sum(pf.total) AS revenue
    FROM purchase_fact pf {join}
    WHERE pf.store_id = $1 AND pf.purchased_on BETWEEN $2 AND $3 AND NOT pf.wholly_refunded
    GROUP BY 1
"""
_OLD_LINE_SQL = """
    WITH per_purchase AS (
        SELECT l.{column} AS key, pf.purchase_id, pf.customer_id, sum(l.amount) AS amount
        FROM purchase_fact pf
        JOIN analysis_sale_line l ON l.purchase_id = pf.purchase_id
        WHERE pf.store_id = $1 AND pf.purchased_on BETWEEN $2 AND $3
        GROUP BY 1, 2, 3
    )
    SELECT key, count(DISTINCT customer_id) FILTER (WHERE amount > 0) AS customers,
           count(*) FILTER (WHERE amount > 0) AS purchases, sum(amount) AS revenue
    FROM per_purchase
    GROUP BY 1
    HAVING sum(amount) <> 0 OR count(*) FILTER (WHERE amount > 0) > 0
"""


def _old_statement(by: str) -> str:
    if by in ("product", "category"):
        return _OLD_LINE_SQL.format(column={"product": "sku", "category": "category"}[by])
    key, join = _OLD_KEYS[by]
    return _OLD_PURCHASE_SQL.format(key=key, join=join)


async def groupings(stack: LocalStack, store: str, args: argparse.Namespace) -> bool:
    """Each other grouping over the whole period, the statement now against the one before,
    both planned per call in the route's read transaction, alternating: p50 and the same rows."""
    start, end = period(args.months)
    db = await asyncpg.connect(asyncpg_dsn(stack.database_url("scoring")))
    same = True
    try:
        print(f"the other groupings over the whole period, {args.groupings} runs each, p50:")
        others: tuple[consumption.By, ...] = ("tier", "staff", "region", "product", "category")
        for by in others:
            times: dict[str, list[float]] = {"now": [], "before": []}
            found: dict[str, list[Any]] = {}
            for i in range(args.groupings):
                order = ("now", "before") if i % 2 == 0 else ("before", "now")
                for which in order:
                    sql = consumption.statement(by) if which == "now" else _old_statement(by)
                    async with planned_per_call(db):
                        elapsed, rows = await timed(db.fetch(sql, store, start, end))
                    times[which].append(elapsed)
                    found[which] = sorted(
                        (tuple(r.values()) for r in rows), key=lambda r: str(r[0])
                    )
            equal = found["now"] == found["before"]
            same = same and equal
            print(
                f"  {by:<9} now {percentile_ms(times['now'], 50):>7.0f} ms, before "
                f"{percentile_ms(times['before'], 50):>7.0f} ms ({len(found['now'])} groups, "
                f"{'same rows' if equal else 'ROWS DIFFER'})"
            )
            log(f"  {by} done")
    finally:
        await db.close()
    return same
