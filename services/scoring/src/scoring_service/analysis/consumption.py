"""Consumption structure (DOMAIN.md §10): a store's customers, purchases and revenue in a period,
grouped by month, tier, product, category, serving staff member or region, with each group's
share of the revenue.

The base is scoring's purchase facts: a purchase belongs to the period by its store-local day,
and counts net of its refunds (a refund takes money back from the purchase it refunds, in that
purchase's month, whenever it came); a purchase its refunds emptied is no purchase. A merged-away
file's purchases count for the survivor (the facts were moved to it).

- ``month``: the purchase's store-local month, ``YYYY-MM``;
- ``tier``: the customer's value tier now (the pyramid of today, not at the purchase);
- ``staff``: the staff member who served the purchase (null: nobody named);
- ``region``: the district of the customer's address (null: none given);
- ``product`` / ``category``: the purchase's lines of that sku / category, net of the refunds'
  lines; ``purchases`` and ``customers`` count those with something left of it. A purchase of two
  products counts once under each, so these counts do not add up to the store's.

``share`` is the group's revenue over the table's, four places (0 when there is none).
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

import asyncpg

from scoring_service.analysis.periods import Period

By = Literal["month", "tier", "product", "category", "staff", "region"]

# The purchases of the period, net: one of these per grouping, keyed by a purchase's fact.
_FACTS = """
    FROM purchase_fact pf {join}
    WHERE pf.store_id = $1 AND pf.purchased_on BETWEEN $2 AND $3 AND NOT pf.wholly_refunded
"""
_BY_PURCHASE = {
    "month": ("to_char(pf.purchased_on, 'YYYY-MM')", ""),
    "tier": ("s.value_tier", "LEFT JOIN customer_score s ON s.customer_id = pf.customer_id"),
    "staff": ("a.staff_id", "LEFT JOIN analysis_sale_staff a ON a.purchase_id = pf.purchase_id"),
    "region": (
        "d.district",
        "LEFT JOIN analysis_customer_district d ON d.customer_id = pf.customer_id",
    ),
}
_PURCHASE_SQL = """
    SELECT {key} AS key, count(DISTINCT pf.customer_id) AS customers, count(*) AS purchases,
           sum(pf.total) AS revenue
    {facts}
    GROUP BY 1
"""
# A line's purchase in the period by its fact (which says whose it is now and when it was); the
# refunds' lines are under the same purchase, negative.
_LINE_SQL = """
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
_LINE_COLUMNS = {"product": "sku", "category": "category"}


@dataclass(frozen=True, slots=True)
class Group:
    key: str | None
    customers: int
    purchases: int
    revenue: Decimal
    share: float


def statement(by: By) -> str:
    """The statement of one grouping (only constants are interpolated)."""
    if by in _LINE_COLUMNS:
        return _LINE_SQL.format(column=_LINE_COLUMNS[by])
    key, join = _BY_PURCHASE[by]
    return _PURCHASE_SQL.format(key=key, facts=_FACTS.format(join=join))


async def consumption(
    db: asyncpg.Connection, *, store_id: str, by: By, period: Period
) -> list[Group]:
    """The groups in key order (months in time), the unnamed group (null) last."""
    rows = await db.fetch(statement(by), store_id, period.start, period.end)
    total = sum((r["revenue"] for r in rows), Decimal(0))
    rows = sorted(rows, key=lambda r: (r["key"] is None, r["key"] or ""))
    return [
        Group(
            key=r["key"],
            customers=r["customers"],
            purchases=r["purchases"],
            revenue=r["revenue"],
            share=round(float(r["revenue"] / total), 4) if total else 0.0,
        )
        for r in rows
    ]
