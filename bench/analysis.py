"""Consumption by month over one store of a million purchases: through the gateway against the
same statement's raw SQL, same run.

    uv run python bench/analysis.py [--purchases 1000000] [--customers 50000] [--months 36]
                                    [--requests 30] [--facts-requests 5] [--old-requests 7]
                                    [--groupings 2]

Starts the whole stack in a throwaway directory, creates a store and its manager's account
through the gateway, and generates ``--purchases`` purchases straight into the scoring tables the
analysis reads (one ``INSERT … SELECT`` over ``generate_series`` each): ``purchase_fact`` spread
over the last ``--months`` months (store-local days, shop hours), over ``--customers`` customers
(skewed: a few buy often, most seldom) and 400 products in 8 categories (skewed to the best
sellers; one line, 30 % a second), 1 % wholly refunded (total 0, their refund lines negative);
``analysis_sale_line`` with each line's amount, ``analysis_sale_staff`` naming one of 20 staff
(10 % nobody), ``analysis_customer_district`` one of Shanghai's 16 districts per customer (5 %
none). Then ``ANALYZE``.

The facts' INSERT marks their 36 months for the read model (analysis/month_summary.py): the
first request recomputes them (timed apart). Then it measures ``GET /api/v1/stores/{id}/analysis/
consumption?by=month&from=&to=`` over the whole period (from the store's first purchase) as the
store's manager, one request at a time, against the statements the route sends (the marked
months recomputed, the read of the summary; ``month_summary.refresh`` and ``months`` in the
route's read transaction) on a raw asyncpg connection to scoring's database, alternating:
p50/p99 of both and the ratio, and which plans the raw connection's prepared statements ran
(``pg_prepared_statements``: custom and generic). Then, without the read model,
``--facts-requests`` runs of the grouping over the facts (``consumption.statement("month")``,
planned per call) and ``--old-requests`` of the statement it replaced (``count(DISTINCT)`` by a
text month) on a fresh connection, whose executions from the sixth may run a generic plan; the
plans (``EXPLAIN ANALYZE, BUFFERS``) and where the facts' statement's time goes. Then a read
after a purchase in the current month (it recomputes that month), ``--requests`` times, as the
pipeline leaves a store's months between reads. Last, each other grouping's statement over the
whole period against the one it replaced (``--groupings`` runs each, 0 to skip). Exits 1 if a
request failed or the route's months differ from the raw read's or the facts' statement's, or a
grouping's rows differ from the old statement's.
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
from scoring_service.analysis import consumption, month_summary
from scoring_service.analysis.periods import Period
from scoring_service.analysis.planning import planned_per_call

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
                        elapsed, rows = await _timed(db.fetch(sql, store, start, end))
                    times[which].append(elapsed)
                    found[which] = sorted(
                        (tuple(r.values()) for r in rows), key=lambda r: str(r[0])
                    )
            equal = found["now"] == found["before"]
            same = same and equal
            print(
                f"  {by:<9} now {_ms(times['now'], 50):>7.0f} ms, before "
                f"{_ms(times['before'], 50):>7.0f} ms ({len(found['now'])} groups, "
                f"{'same rows' if equal else 'ROWS DIFFER'})"
            )
            log(f"  {by} done")
    finally:
        await db.close()
    return same


# One purchase of customer ac0 today: $1 its id, $2 the store, $3 the day, $4 the zone.
_ONE_FACT_SQL = """
    INSERT INTO purchase_fact (purchase_id, store_id, customer_id, purchased_at, purchased_on,
                               timezone, total)
    VALUES ($1, $2, 'ac0', now(), $3, $4, 100)
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--purchases", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--facts-requests", type=int, default=5)
    parser.add_argument("--old-requests", type=int, default=7)
    parser.add_argument("--groupings", type=int, default=2)
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


async def _explain(db: asyncpg.Connection, sql: str, args: tuple[Any, ...]) -> list[str]:
    """``EXPLAIN (ANALYZE, BUFFERS)`` of the statement as the route runs it: planned for these
    values in the route's read transaction (analysis/planning.py)."""
    async with planned_per_call(db):
        rows = await db.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, *args)
    return [r[0] for r in rows]


async def _where_time_goes(db: asyncpg.Connection, sql: str, args: tuple[Any, ...]) -> None:
    async with planned_per_call(db):
        explain = "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql
        plan = orjson.loads(await db.fetchval(explain, *args))
    nodes: list[tuple[float, str]] = []
    _exclusive(plan[0]["Plan"], nodes)
    for own, label in sorted(nodes, reverse=True)[:5]:
        print(f"  {own:>9.1f} ms  {label}")
    print(f"  execution {float(plan[0]['Execution Time']):.1f} ms")


async def _route_months(
    db: asyncpg.Connection, store: str, span: Period
) -> list[month_summary.MonthFigures]:
    """What the route does on its connection: the marked months recomputed, then the read."""
    await month_summary.refresh(db, store_id=store)
    async with planned_per_call(db):
        return await month_summary.months(db, store_id=store, period=span)


async def _timed(call: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    found = await call
    return time.perf_counter() - started, found


def _ms(values: list[float], p: float) -> float:
    return percentile(sorted(values), p) * 1000


async def measure(stack: LocalStack, store: str, token: str, args: argparse.Namespace) -> bool:
    start, end = period(args.months)
    dsn = asyncpg_dsn(stack.database_url("scoring"))
    db = await asyncpg.connect(dsn)
    # An earlier `from` than the store's first data is refused.
    first = await db.fetchval(
        "SELECT min(purchased_on) FROM purchase_fact WHERE store_id = $1", store
    )
    start = max(start, first)
    span = Period(start, end)
    url = stack.url("gateway") + f"/api/v1/stores/{store}/analysis/consumption"
    params = {"by": "month", "from": start.isoformat(), "to": end.isoformat()}
    timings: dict[str, list[float]] = {"gateway": [], "raw": []}
    raw_all: list[float] = []  # every execution on the connection, untimed ones too
    errors = 0
    warmup = 3
    months: list[month_summary.MonthFigures] = []
    body = b""
    try:
        marked = await db.fetchval(
            "SELECT count(DISTINCT month) FROM analysis_dirty_month WHERE store_id = $1", store
        )
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
            # The first read after the load recomputes every month the load marked.
            started = time.perf_counter()
            async with http.get(url, params=params) as response:
                body = await response.read()
            first_read = time.perf_counter() - started
            if response.status != 200:
                errors += 1
                log(f"  {response.status} {body[:200]!r}")
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
                        months = await _route_months(db, store, span)
                    elapsed = time.perf_counter() - started
                    if target == "raw":
                        raw_all.append(elapsed)
                    if i >= warmup:  # untimed: connections, caches, prepared statements
                        timings[target].append(elapsed)
                log(f"  round {i + 1}/{args.requests + warmup}")
        # Which plans the raw connection's prepared statements ran (the same code as the
        # route's): PostgreSQL counts each statement's custom and generic plans.
        prepared = await db.fetch(
            "SELECT generic_plans, custom_plans, statement FROM pg_prepared_statements "
            "WHERE statement LIKE '%purchase_fact%' AND statement NOT LIKE '%pg_prepared%'"
        )
        read_args = await month_summary.read_arguments(db, store_id=store, period=span)
        read_plan = await _explain(db, month_summary.READ_SQL, read_args)

        # Without the read model: the grouping over the facts as it is now (by month and
        # customer hashed, planned per call) and the statement it replaced, on a fresh
        # connection whose first five executions are custom plans and the rest generic.
        facts_sql = consumption.statement("month")
        facts_times: list[float] = []
        facts_rows: list[Any] = []
        for _ in range(args.facts_requests):
            async with planned_per_call(db):
                elapsed, facts_rows = await _timed(db.fetch(facts_sql, store, start, end))
            facts_times.append(elapsed)
        log("  the facts' statement done; the old one …")
        old = await asyncpg.connect(dsn)
        try:
            old_times = [
                (await _timed(old.fetch(OLD_MONTH_SQL, store, start, end)))[0]
                for _ in range(args.old_requests)
            ]
            old_plans = await old.fetch(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                "WHERE statement LIKE '%count(DISTINCT%' AND statement NOT LIKE '%pg_prepared%'"
            )
        finally:
            await old.close()
        facts_plan = await _explain(db, facts_sql, (store, start, end))
        print_later = (facts_sql, (store, start, end))

        # As the pipeline leaves it: a purchase in the current month marks it, the next read
        # recomputes it from its facts.
        log("  reads after a purchase in the current month …")
        after_purchase: list[float] = []
        counted_after: list[int] = []
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
            for k in range(args.requests):
                await db.execute(_ONE_FACT_SQL, f"bench-later-{k}", store, end, ZONE)
                started = time.perf_counter()
                async with http.get(url, params=params) as response:
                    later_body = await response.read()
                after_purchase.append(time.perf_counter() - started)
                if response.status != 200:
                    errors += 1
                    continue
                counted_after.append(sum(m["purchases"] for m in orjson.loads(later_body)["items"]))
    finally:
        await db.close()

    items = orjson.loads(body)["items"] if body else []
    served = [(m["key"], m["customers"], m["purchases"], Decimal(str(m["revenue"]))) for m in items]
    raw = sorted(
        (consumption.month_key(m.month), m.customers, m.purchases, m.revenue) for m in months
    )
    from_facts = sorted(
        (consumption.month_key(r["key"]), r["customers"], r["purchases"], r["revenue"])
        for r in facts_rows
    )
    same = served == raw == from_facts
    g50, g99 = p50_p99_ms(timings["gateway"])
    r50, r99 = p50_p99_ms(timings["raw"])
    counted = sum(m["purchases"] for m in items)
    print(
        f"{start}..{end}: {len(items)} months, {counted:,} purchases counted (wholly refunded "
        f"ones are none); the route's months {'equal' if same else 'DIFFER FROM'} the raw "
        f"reads' and the facts' statement's"
    )
    print(
        f"first read after the load (recomputes {marked} marked months): {first_read * 1000:.0f} ms"
    )
    print(f"{'':<10} {'p50':>9} {'p99':>9}")
    print(f"{'gateway':<10} {g50:>7.1f}ms {g99:>7.1f}ms")
    print(f"{'raw SQL':<10} {r50:>7.1f}ms {r99:>7.1f}ms")
    print(f"ratio p50 {g50 / r50:.2f}, p99 {g99 / r99:.2f}")
    first, later = raw_all[:5], raw_all[5:]
    print(
        f"raw reads by execution on its one connection: 1st-5th median {_ms(first, 50):.1f} ms, "
        f"6th on median {_ms(later, 50):.1f} ms"
    )
    for r in prepared:
        what = " ".join(r["statement"].split())[:70]
        print(f"  plans run: {r['custom_plans']} custom, {r['generic_plans']} generic: {what} …")
    print(
        f"without the read model, the facts grouped by month and customer (planned per call), "
        f"{args.facts_requests} runs: p50 {_ms(facts_times, 50):.0f} ms, "
        f"max {max(facts_times) * 1000:.0f} ms"
    )
    if old_times:
        print(
            f"the statement it replaced (count(DISTINCT) by a text month), one connection: "
            f"1st-5th median {_ms(old_times[:5], 50):.0f} ms"
            + (f", 6th on median {_ms(old_times[5:], 50):.0f} ms" if old_times[5:] else "")
        )
        for r in old_plans:
            print(f"  plans run: {r['custom_plans']} custom, {r['generic_plans']} generic")
    a50, a99 = p50_p99_ms(after_purchase)
    print(
        f"a read after a purchase in the current month (recomputes that month), "
        f"{len(after_purchase)} times: p50 {a50:.1f} ms, p99 {a99:.1f} ms; each counted it: "
        f"{counted_after == [counted + k + 1 for k in range(len(counted_after))]}"
    )
    same = same and counted_after == [counted + k + 1 for k in range(len(counted_after))]
    print("the read's plan (summary months and the months cut, by day):")
    for line in read_plan:
        print("  " + line)
    print("the facts' statement's plan:")
    for line in facts_plan:
        print("  " + line)
    db = await asyncpg.connect(dsn)
    try:
        print("where the facts' statement's time goes (each node's own wall time):")
        await _where_time_goes(db, *print_later)
    finally:
        await db.close()
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
        if args.groupings:
            ok = asyncio.run(groupings(stack, store, args)) and ok
    load_1, load_5, _ = os.getloadavg()
    print(f"load average {load_1:.1f}/{load_5:.1f} at the end")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
