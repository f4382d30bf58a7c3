"""The analysis benchmark's store: a million purchases generated straight into the scoring tables
the analysis reads (facts, sale lines, serving staff, customers' districts), over a period
ending today in the store's zone."""

from __future__ import annotations

import argparse
import time
from datetime import date, datetime
from zoneinfo import ZoneInfo

import asyncpg
from support import log

from crm_devstack.stack import LocalStack
from crm_libs.db import asyncpg_dsn

ZONE = "Asia/Shanghai"
PRODUCTS = 400
STAFF = 20
CATEGORIES = ("supplements", "vitamins", "tea", "devices", "skincare", "herbal", "food", "gifts")
DISTRICTS = (
    "黄浦区", "徐汇区", "长宁区", "静安区", "普陀区", "虹口区", "杨浦区", "闵行区",
    "宝山区", "嘉定区", "浦东新区", "金山区", "松江区", "青浦区", "奉贤区", "崇明区",
)  # fmt: skip

# $1 products, $2 categories. Prices 20-500 yuan.
_PRODUCTS_SQL = """
    CREATE TEMP TABLE bench_product AS
    SELECT i, 'SKU-' || lpad(i::text, 4, '0') AS sku,
           ($2::text[])[1 + i % cardinality($2::text[])] AS category,
           round((20 + random() * 480)::numeric, 2) AS price,
           (15 + i % 4 * 15) AS days
    FROM generate_series(0, $1::int - 1) AS g(i)
"""
# $1 store, $2 zone, $3 first day, $4 days, $5 count, $6 customers, $7 products. Popularity:
# random()^k skews an index to the low end (customer 0 and product 0 the most frequent).
_FACTS_SQL = """
    INSERT INTO purchase_fact (purchase_id, store_id, customer_id, purchased_at, purchased_on,
                               timezone, total, supply_days, wholly_refunded, line_skus,
                               line_categories, line_quantities)
    SELECT 'ap' || g.i, $1::text, 'ac' || floor($6::int * x.c ^ 2)::int,
           (d.day + time '09:00' + x.h * interval '12 hours') AT TIME ZONE $2::text, d.day,
           $2::text,
           CASE WHEN x.r < 0.01 THEN 0 ELSE p1.price * q.q1 + coalesce(p2.price * q.q2, 0) END,
           CASE WHEN x.r < 0.01 THEN 0 ELSE p1.days * q.q1 + coalesce(p2.days * q.q2, 0) END,
           x.r < 0.01,
           CASE WHEN p2.sku IS NULL THEN ARRAY[p1.sku] ELSE ARRAY[p1.sku, p2.sku] END,
           CASE WHEN p2.sku IS NULL THEN ARRAY[p1.category]
                ELSE ARRAY[p1.category, p2.category] END,
           CASE WHEN p2.sku IS NULL THEN ARRAY[q.q1] ELSE ARRAY[q.q1, q.q2] END
    FROM generate_series(1, $5::int) AS g(i)
    -- Correlated with the row, so drawn per row (an uncorrelated subquery runs once).
    CROSS JOIN LATERAL (
        SELECT random() AS r, random() AS c, random() AS h, random() AS a, random() AS b,
               random() AS s, random() AS t
        WHERE g.i IS NOT NULL
    ) AS x
    CROSS JOIN LATERAL (SELECT $3::date + floor(x.t * $4::int)::int AS day) AS d
    CROSS JOIN LATERAL (
        SELECT 1 + floor(x.a * 3)::int AS q1, 1 + floor(x.b * 2)::int AS q2
    ) AS q
    JOIN bench_product p1 ON p1.i = floor($7::int * x.a ^ 3)::int
    LEFT JOIN bench_product p2 ON x.s < 0.3 AND p2.i = floor($7::int * x.b ^ 2)::int
"""
# Each line's amount; a wholly refunded purchase's lines and its refund's, negative.
_LINES_SQL = """
    INSERT INTO analysis_sale_line (source_id, line_no, purchase_id, sku, category, amount)
    SELECT src.source_id, l.n, pf.purchase_id, l.sku, l.category,
           src.sign * p.price * l.qty
    FROM purchase_fact pf
    CROSS JOIN LATERAL unnest(pf.line_skus, pf.line_categories, pf.line_quantities)
        WITH ORDINALITY AS l(sku, category, qty, n)
    JOIN bench_product p ON p.sku = l.sku
    CROSS JOIN LATERAL (
        SELECT pf.purchase_id AS source_id, 1 AS sign
        UNION ALL SELECT 'ar' || pf.purchase_id, -1 WHERE pf.wholly_refunded
    ) AS src
    WHERE pf.store_id = $1::text
"""
_STAFF_SQL = """
    INSERT INTO analysis_sale_staff (purchase_id, staff_id)
    SELECT purchase_id, CASE WHEN random() < 0.1 THEN NULL
                             ELSE 'as' || floor(random() * $2::int)::int END
    FROM purchase_fact WHERE store_id = $1::text
"""
_DISTRICTS_SQL = """
    INSERT INTO analysis_customer_district (customer_id, store_id, district, version)
    SELECT DISTINCT ON (customer_id) customer_id, $1::text,
           CASE WHEN random() < 0.05 THEN NULL
                ELSE ($2::text[])[1 + floor(random() * cardinality($2::text[]))::int] END, 1
    FROM purchase_fact WHERE store_id = $1::text
"""


def period(months: int) -> tuple[date, date]:
    """From the first day of the month ``months - 1`` before this one, to today."""
    today = datetime.now(ZoneInfo(ZONE)).date()
    first = today.year * 12 + today.month - 1 - (months - 1)
    return date(first // 12, first % 12 + 1, 1), today


async def load(stack: LocalStack, store: str, args: argparse.Namespace) -> None:
    start, end = period(args.months)
    db = await asyncpg.connect(asyncpg_dsn(stack.database_url("scoring")))
    try:
        await db.execute("SELECT setseed(0.12)")
        await db.execute(_PRODUCTS_SQL, PRODUCTS, list(CATEGORIES))
        for what, sql, params in (
            (
                "purchase facts",
                _FACTS_SQL,
                (
                    store,
                    ZONE,
                    start,
                    (end - start).days + 1,
                    args.purchases,
                    args.customers,
                    PRODUCTS,
                ),
            ),
            ("sale lines", _LINES_SQL, (store,)),
            ("serving staff", _STAFF_SQL, (store, STAFF)),
            ("customers' districts", _DISTRICTS_SQL, (store, list(DISTRICTS))),
        ):
            started = time.perf_counter()
            status = await db.execute(sql, *params)
            log(f"  {what}: {status.split()[-1]} rows in {time.perf_counter() - started:.0f} s")
        for table in (
            "purchase_fact",
            "analysis_sale_line",
            "analysis_sale_staff",
            "analysis_customer_district",
        ):
            await db.execute(f"VACUUM ANALYZE {table}")
    finally:
        await db.close()
