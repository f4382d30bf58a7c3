"""Consumption by month over one store of a million purchases: through the gateway against the
same statement's raw SQL, same run.

    uv run python bench/analysis.py [--purchases 1000000] [--customers 50000] [--months 36]
                                    [--requests 30]

Starts the whole stack in a throwaway directory, creates a store and its manager's account
through the gateway, and generates ``--purchases`` purchases straight into the scoring tables the
analysis reads (one ``INSERT … SELECT`` over ``generate_series`` each): ``purchase_fact`` spread
over the last ``--months`` months (store-local days, shop hours), over ``--customers`` customers
(skewed: a few buy often, most seldom) and 400 products in 8 categories (skewed to the best
sellers; one line, 30 % a second), 1 % wholly refunded (total 0, their refund lines negative);
``analysis_sale_line`` with each line's amount, ``analysis_sale_staff`` naming one of 20 staff
(10 % nobody), ``analysis_customer_district`` one of Shanghai's 16 districts per customer (5 %
none). Then ``ANALYZE``.

Measures ``GET /api/v1/stores/{id}/analysis/consumption?by=month&from=&to=`` over the whole
period as the store's manager, one request at a time, against the statement the service sends
(``analysis/consumption.py``'s ``statement("month")``) on a raw asyncpg connection to scoring's
database, alternating: p50/p99 of both and the ratio; and the statement's plan (``EXPLAIN
ANALYZE, BUFFERS``) with where its time goes. Exits 1 if a request failed or its months differ
from the raw statement's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import asyncpg
import orjson
from support import log, p50_p99_ms, percentile, temp_stack

from crm_devstack.stack import LocalStack
from crm_libs.db import asyncpg_dsn
from scoring_service.analysis import consumption

ZONE = "Asia/Shanghai"
STACK_ENV = {"CRM_LOG_LEVEL": "WARNING", "CRM_RATE_LIMIT": "1000000/minute"}
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


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--purchases", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--requests", type=int, default=30)
    return parser.parse_args()


async def _post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> dict[str, Any]:
    async with http.post(url, json=body) as response:
        found: dict[str, Any] = await response.json()
        if response.status not in (200, 201):
            raise RuntimeError(f"POST {url}: {response.status} {found}")
        return found


async def setup(stack: LocalStack) -> tuple[str, str]:
    """The store and its manager's bearer token."""
    api = stack.url("gateway") + "/api/v1"
    async with aiohttp.ClientSession() as http:
        admin = {"username": "admin", "password": stack.admin_password}
        token = (await _post(http, f"{api}/auth/token", admin))["access_token"]
    suffix = uuid.uuid4().hex[:6]
    account = {"username": f"an-manager-{suffix}", "password": "correct horse battery"}
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        store = await _post(
            http, f"{api}/stores", {"code": f"AN{suffix}", "name": "Analysis", "timezone": ZONE}
        )
        await _post(
            http, f"{api}/accounts", account | {"role": "store_manager", "store_id": store["id"]}
        )
    async with aiohttp.ClientSession() as http:
        manager = str((await _post(http, f"{api}/auth/token", account))["access_token"])
    return str(store["id"]), manager


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


def _exclusive(node: dict[str, Any], out: list[tuple[float, str]]) -> float:
    """Each node's own wall time (its total less its children's), collected. Under a Gather
    a node's time per loop is a worker's, about the wall's; elsewhere it is per loop × loops."""
    parallel = bool(node.get("Parallel Aware")) or node.get("Node Type", "").startswith("Gather")
    loops = 1 if parallel or "Workers" in node else max(1, int(node.get("Actual Loops", 1)))
    total = float(node["Actual Total Time"]) * loops
    children = sum(_exclusive(child, out) for child in node.get("Plans", []))
    label = node["Node Type"]
    if "Index Name" in node:
        label += f" on {node['Index Name']}"
    elif "Relation Name" in node:
        label += f" on {node['Relation Name']}"
    out.append((max(0.0, total - children), label))
    return total


async def _plan_as(db: asyncpg.Connection, mode: str, sql: str, args: tuple[Any, ...]) -> list[str]:
    """``EXPLAIN ANALYZE`` of the statement prepared, as a connection plans it by ``mode``:
    ``force_custom_plan`` (planned for these values, as the first five executions of a
    prepared statement are) or ``force_generic_plan`` (what PostgreSQL switches a connection's
    prepared statement to after them when it estimates it no dearer)."""
    values = ", ".join("'" + str(a).replace("'", "''") + "'" for a in args)
    await db.execute("PREPARE bench_q(text, date, date) AS " + sql)
    try:
        await db.execute(f"SET plan_cache_mode = {mode}")
        rows = await db.fetch(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_q({values})")
    finally:
        await db.execute("RESET plan_cache_mode")
        await db.execute("DEALLOCATE bench_q")
    return [r[0] for r in rows]


async def measure(stack: LocalStack, store: str, token: str, args: argparse.Namespace) -> bool:
    start, end = period(args.months)
    url = stack.url("gateway") + f"/api/v1/stores/{store}/analysis/consumption"
    params = {"by": "month", "from": start.isoformat(), "to": end.isoformat()}
    sql = consumption.statement("month")
    db = await asyncpg.connect(asyncpg_dsn(stack.database_url("scoring")))
    timings: dict[str, list[float]] = {"gateway": [], "raw": []}
    raw_all: list[float] = []  # every execution on the connection, untimed ones too
    errors = 0
    warmup = 3
    rows: list[Any] = []
    body = b""
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
            for i in range(args.requests + warmup):
                for target in ("gateway", "raw") if i % 2 else ("raw", "gateway"):
                    started = time.perf_counter()
                    if target == "gateway":
                        async with http.get(url, params=params) as response:
                            body = await response.read()
                        if response.status != 200:
                            errors += 1
                            log(f"  {response.status} {body[:200]!r}")
                            continue
                    else:
                        rows = await db.fetch(sql, store, start, end)
                    elapsed = time.perf_counter() - started
                    if target == "raw":
                        raw_all.append(elapsed)
                    if i >= warmup:  # untimed: connections, caches, prepared statements
                        timings[target].append(elapsed)
                log(f"  round {i + 1}/{args.requests + warmup}")
        explain = "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql
        plan = orjson.loads(await db.fetchval(explain, store, start, end))
        custom = await _plan_as(db, "force_custom_plan", sql, (store, start, end))
        generic = await _plan_as(db, "force_generic_plan", sql, (store, start, end))
    finally:
        await db.close()

    items = orjson.loads(body)["items"] if body else []
    served = [(m["key"], m["purchases"], Decimal(str(m["revenue"]))) for m in items]
    raw = sorted((r["key"], r["purchases"], r["revenue"]) for r in rows)
    same = served == raw
    g50, g99 = p50_p99_ms(timings["gateway"])
    r50, r99 = p50_p99_ms(timings["raw"])
    counted = sum(m["purchases"] for m in items)
    print(
        f"{start}..{end}: {len(items)} months, {counted:,} purchases counted (wholly refunded "
        f"ones are none), the route's months {'equal' if same else 'DIFFER FROM'} the raw "
        f"statement's"
    )
    print(f"{'':<10} {'p50':>9} {'p99':>9}")
    print(f"{'gateway':<10} {g50:>7.1f}ms {g99:>7.1f}ms")
    print(f"{'raw SQL':<10} {r50:>7.1f}ms {r99:>7.1f}ms")
    print(f"ratio p50 {g50 / r50:.2f}, p99 {g99 / r99:.2f}")
    first, later = sorted(raw_all[:5]), sorted(raw_all[5:])
    print(
        f"raw SQL by execution on its one connection: 1st-5th median "
        f"{percentile(first, 50) * 1000:.0f} ms, "
        f"6th on median {percentile(later, 50) * 1000:.0f} ms"
    )
    print("the statement's plan for these values (a connection's first five executions):")
    for line in custom:
        print("  " + line)
    print("its generic plan (a connection's prepared statement after five executions):")
    for line in generic:
        print("  " + line)
    nodes: list[tuple[float, str]] = []
    _exclusive(plan[0]["Plan"], nodes)
    executed = float(plan[0]["Execution Time"])
    print("where the time goes, EXPLAIN ANALYZE (each node's own wall time):")
    for own, label in sorted(nodes, reverse=True)[:5]:
        print(f"  {own:>9.1f} ms  {label}")
    print(f"  execution {executed:.1f} ms")
    if errors:
        print(f"{errors} requests failed")
    return same and not errors


def main() -> int:
    args = parse_args()
    load_1, load_5, _ = os.getloadavg()
    print(
        f"analysis benchmark: {args.purchases:,} purchases of {args.customers:,} customers over "
        f"{args.months} months in one store, consumption by month, {args.requests} requests per "
        f"target, one at a time, {os.cpu_count()} cores, load average "
        f"{load_1:.1f}/{load_5:.1f} at start",
        flush=True,
    )
    with temp_stack("crm-bench-analysis-", extra_env=STACK_ENV) as stack:
        log(f"starting the stack in {stack.data_dir} …")
        stack.start_infrastructure()
        stack.start_services()
        log("creating the store and its manager …")
        store, token = asyncio.run(setup(stack))
        log(f"generating {args.purchases:,} purchases …")
        asyncio.run(load(stack, store, args))
        ok = asyncio.run(measure(stack, store, token, args))
    load_1, load_5, _ = os.getloadavg()
    print(f"load average {load_1:.1f}/{load_5:.1f} at the end")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
