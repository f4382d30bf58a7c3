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
from decimal import Decimal
from typing import Any

import aiohttp
import asyncpg
import orjson
from analysis_data import ZONE, load, period
from analysis_groupings import OLD_MONTH_SQL, groupings
from support import log, p50_p99_ms, percentile_ms, temp_stack, timed

from crm_devstack.stack import LocalStack
from crm_libs.db import asyncpg_dsn
from scoring_service.analysis import consumption, month_summary
from scoring_service.analysis.periods import Period
from scoring_service.analysis.planning import planned_per_call

STACK_ENV = {"CRM_LOG_LEVEL": "WARNING", "CRM_RATE_LIMIT": "1000000/minute"}
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
                elapsed, facts_rows = await timed(db.fetch(facts_sql, store, start, end))
            facts_times.append(elapsed)
        log("  the facts' statement done; the old one …")
        old = await asyncpg.connect(dsn)
        try:
            old_times = [
                (await timed(old.fetch(OLD_MONTH_SQL, store, start, end)))[0]
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
        "raw reads by execution on its one connection: 1st-5th median "
        f"{percentile_ms(first, 50):.1f} ms, 6th on median {percentile_ms(later, 50):.1f} ms"
    )
    for r in prepared:
        what = " ".join(r["statement"].split())[:70]
        print(f"  plans run: {r['custom_plans']} custom, {r['generic_plans']} generic: {what} …")
    print(
        f"without the read model, the facts grouped by month and customer (planned per call), "
        f"{args.facts_requests} runs: p50 {percentile_ms(facts_times, 50):.0f} ms, "
        f"max {max(facts_times) * 1000:.0f} ms"
    )
    if old_times:
        print(
            f"the statement it replaced (count(DISTINCT) by a text month), one connection: "
            f"1st-5th median {percentile_ms(old_times[:5], 50):.0f} ms"
            + (
                f", 6th on median {percentile_ms(old_times[5:], 50):.0f} ms"
                if old_times[5:]
                else ""
            )
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
