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

By month the whole months come from the read model (analysis/month_summary.py), one row each,
and only the months the period cuts from the facts. Every grouping counts its distinct
customers in two steps, grouped by key and customer (hashed) and then counted per key, where
``count(DISTINCT customer_id)`` sorted every purchase of the period; month keys are grouped as
dates and written as ``YYYY-MM`` after; the statements run planned for their period
(analysis/planning.py).
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

import asyncpg

from scoring_service.analysis import month_summary
from scoring_service.analysis.periods import Period
from scoring_service.analysis.planning import planned_per_call

By = Literal["month", "tier", "product", "category", "staff", "region"]

_BY_PURCHASE = {
    "month": ("date_trunc('month', pf.purchased_on::timestamp)::date", ""),
    "tier": ("s.value_tier", "LEFT JOIN customer_score s ON s.customer_id = pf.customer_id"),
    "staff": ("a.staff_id", "LEFT JOIN analysis_sale_staff a ON a.purchase_id = pf.purchase_id"),
    "region": (
        "d.district",
        "LEFT JOIN analysis_customer_district d ON d.customer_id = pf.customer_id",
    ),
}
# The purchases of the period, net, per key and customer, then per key: no sort of every
# purchase for its distinct customers.
_PURCHASE_SQL = """
    SELECT key, count(*) AS customers, sum(purchases)::bigint AS purchases,
           sum(revenue) AS revenue
    FROM (
        SELECT {key} AS key, pf.customer_id, count(*) AS purchases, sum(pf.total) AS revenue
        FROM purchase_fact pf {join}
        WHERE pf.store_id = $1 AND pf.purchased_on BETWEEN $2 AND $3 AND NOT pf.wholly_refunded
        GROUP BY 1, 2
    ) AS per_customer
    GROUP BY key
"""
# A line's purchase in the period by its fact (which says whose it is now and when it was); the
# refunds' lines are under the same purchase, negative. Summed per purchase (what is left of
# it), then per customer, then per key.
_LINE_SQL = """
    WITH per_purchase AS (
        SELECT l.{column} AS key, pf.purchase_id, pf.customer_id, sum(l.amount) AS amount
        FROM purchase_fact pf
        JOIN analysis_sale_line l ON l.purchase_id = pf.purchase_id
        WHERE pf.store_id = $1 AND pf.purchased_on BETWEEN $2 AND $3
        GROUP BY 1, 2
    ), per_customer AS (
        SELECT key, customer_id, count(*) FILTER (WHERE amount > 0) AS purchases,
               sum(amount) AS amount
        FROM per_purchase
        GROUP BY 1, 2
    )
    SELECT key, count(*) FILTER (WHERE purchases > 0) AS customers,
           sum(purchases)::bigint AS purchases, sum(amount) AS revenue
    FROM per_customer
    GROUP BY 1
    HAVING sum(amount) <> 0 OR sum(purchases) > 0
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
    """The statement of one grouping over the facts (only constants are interpolated); by month
    the route reads the read model instead, this is what it would read without it."""
    if by in _LINE_COLUMNS:
        return _LINE_SQL.format(column=_LINE_COLUMNS[by])
    key, join = _BY_PURCHASE[by]
    return _PURCHASE_SQL.format(key=key, join=join)


def month_key(month: date) -> str:
    return month.strftime("%Y-%m")


async def consumption(
    db: asyncpg.Connection, *, store_id: str, by: By, period: Period
) -> list[Group]:
    """The groups in key order (months in time), the unnamed group (null) last."""
    found: list[tuple[str | date | None, int, int, Decimal]]
    if by == "month":
        await month_summary.refresh(db, store_id=store_id)
        async with planned_per_call(db):
            months = await month_summary.months(db, store_id=store_id, period=period)
        found = [(m.month, m.customers, m.purchases, m.revenue) for m in months]
    else:
        async with planned_per_call(db):
            rows = await db.fetch(statement(by), store_id, period.start, period.end)
        found = [(r["key"], r["customers"], r["purchases"], r["revenue"]) for r in rows]
    total = sum((f[3] for f in found), Decimal(0))
    found.sort(key=lambda f: (f[0] is None, "" if f[0] is None else str(f[0])))
    return [
        Group(
            key=month_key(key) if isinstance(key, date) else key,
            customers=customers,
            purchases=purchases,
            revenue=revenue,
            share=round(float(revenue / total), 4) if total else 0.0,
        )
        for key, customers, purchases, revenue in found
    ]
