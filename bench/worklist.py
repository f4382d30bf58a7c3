"""The day's work list over a million tasks in one store: through the gateway against the same
statement's raw SQL, same run.

    uv run python bench/worklist.py [--tasks 1000000] [--staff 40] [--customers 2000]
                                    [--requests 300]

Starts the whole stack in a throwaway directory, creates one store, ``--staff``
roster members (one signed in as a staff account naming them) and ``--customers`` customer files
through the gateway (the names the list shows), gives the customers value tiers in engagement's
scores read copy (the pyramid's shares), and generates ``--tasks`` tasks straight into
engagement's database with one ``INSERT … SELECT`` over ``generate_series``: spread evenly over
the staff and customers, kinds follow_up 35 %, routine 35 %, special_day 15 %, refill 10 %,
recovery 5 %, due days over the past 400 days and the next 30, and statuses drawn as a store
that mostly keeps up leaves them (older than a week: 90 % done, 5 % closed, 5 % still open; the
last week: 60 % done; today and later: 97 % open; one open refill and recovery per customer at
most). Then ``ANALYZE``.

Measures ``GET /api/v1/tasks?assignee=me&due=today`` (a page of 50) as that staff member, one
request at a time, against the same statement (``worklist/service.py``'s ``statement``) on a
raw asyncpg connection, alternating: p50/p99 of both and the ratio; then the page's name lookup
alone (``GET /api/v1/customers?ids=``), whole files against the sparse read the route asks for
(``fields=id,name``), alternating; and the indexes of the plan (``EXPLAIN ANALYZE``). Exits 1 if
a request failed or the plan reads no index.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import asyncpg
import orjson
from support import log, p50_p99_ms, plan_indexes, temp_stack

from crm_devstack.stack import LocalStack
from crm_libs.db import asyncpg_dsn
from crm_libs.pagination import DEFAULT_LIMIT
from engagement_service.worklist import service

SEED = 11
ZONE = "Asia/Shanghai"
STACK_ENV = {"CRM_LOG_LEVEL": "WARNING", "CRM_RATE_LIMIT": "1000000/minute"}
TIERS = (("vip", 0.008), ("major", 0.032), ("medium", 0.12), ("small", 0.64), ("inactive", 0.1))

# One statement: $1 store, $2 staff ids, $3 customer ids, $4 today, $5 count.
_TASKS_SQL = """
    INSERT INTO task (id, store_id, customer_id, kind, phase, due_on, method, purpose, status,
                      assignee_staff_id, done_at, done_on, done_by, occasion, occasion_on,
                      recovery_reason)
    SELECT 'b' || g.i, $1::text, ($3::text[])[1 + g.i % cardinality($3::text[])], k.kind,
           CASE WHEN k.kind = 'follow_up' THEN 1 + g.i % 5 END,
           d.due_on, CASE WHEN g.i % 3 = 0 THEN 'home' ELSE 'phone' END, '回访', s.status,
           ($2::text[])[1 + g.i % cardinality($2::text[])],
           CASE WHEN s.status = 'done' THEN d.due_on + (g.i % 3 - 1) + time '15:00' END,
           CASE WHEN s.status = 'done' THEN d.due_on + (g.i % 3 - 1) END,
           CASE WHEN s.status = 'done' THEN ($2::text[])[1 + g.i % cardinality($2::text[])] END,
           CASE WHEN k.kind = 'special_day' THEN 'birthday' END,
           CASE WHEN k.kind = 'special_day' THEN d.due_on + 3 END,
           CASE WHEN k.kind = 'recovery' THEN 'service' END
    FROM generate_series(1, $5::int) AS g(i)
    -- Correlated with the row, so drawn per row (an uncorrelated subquery runs once).
    CROSS JOIN LATERAL (
        SELECT random() AS r, random() AS u, random() AS v WHERE g.i IS NOT NULL
    ) AS x
    CROSS JOIN LATERAL (SELECT $4::date - 400 + floor(x.r * 431)::int AS due_on) AS d
    CROSS JOIN LATERAL (SELECT CASE
        WHEN x.u < 0.35 THEN 'follow_up' WHEN x.u < 0.70 THEN 'routine'
        WHEN x.u < 0.85 THEN 'special_day' WHEN x.u < 0.95 THEN 'refill'
        ELSE 'recovery' END AS kind) AS k
    CROSS JOIN LATERAL (SELECT CASE
        -- One open refill and one open recovery per customer (unique indexes): only the last
        -- round over the customers may leave one open.
        WHEN k.kind IN ('refill', 'recovery') AND g.i <= $5::int - cardinality($3::text[]) THEN
            CASE WHEN d.due_on < $4::date THEN 'done' ELSE 'closed' END
        WHEN d.due_on < $4::date - 7 THEN
            CASE WHEN x.v < 0.90 THEN 'done'
                 WHEN x.v < 0.95 THEN 'closed' ELSE 'open' END
        WHEN d.due_on < $4::date THEN
            CASE WHEN x.v < 0.60 THEN 'done' ELSE 'open' END
        ELSE CASE WHEN x.v < 0.03 THEN 'done' ELSE 'open' END
        END AS status) AS s
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--staff", type=int, default=40)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=300)
    return parser.parse_args()


async def _post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> dict[str, Any]:
    async with http.post(url, json=body) as response:
        found: dict[str, Any] = await response.json()
        if response.status != 201:
            raise RuntimeError(f"POST {url}: {response.status} {found}")
        return found


async def setup(stack: LocalStack, args: argparse.Namespace) -> tuple[str, list[str], str]:
    """The store, its staff ids and the first one's bearer token; customers created."""
    api = stack.url("gateway") + "/api/v1"
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{api}/auth/token", json={"username": "admin", "password": stack.admin_password}
        ) as response,
    ):
        token = (await response.json())["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        store = (
            await _post(
                http, f"{api}/stores", {"code": "WL", "name": "Work list", "timezone": ZONE}
            )
        )["id"]
        staff = [
            (await _post(http, f"{api}/staff", {"store_id": store, "name": f"员工{i}"}))["id"]
            for i in range(args.staff)
        ]
        customers: list[str] = []
        surnames = "王李张刘陈杨黄赵吴周"

        async def create(i: int) -> None:
            body = {"store_id": store, "name": surnames[i % 10] + "女士" + str(i)}
            customers.append((await _post(http, f"{api}/customers", body))["id"])

        for start in range(0, args.customers, 16):
            await asyncio.gather(
                *(create(i) for i in range(start, min(start + 16, args.customers)))
            )
        account = {"username": "wl-staff", "password": "correct horse battery"}
        await _post(
            http,
            f"{api}/accounts",
            account | {"role": "staff", "store_id": store, "staff_id": staff[0]},
        )
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{api}/auth/token", json=account) as response,
    ):
        staff_token = str((await response.json())["access_token"])
    return store, staff, staff_token


async def load(stack: LocalStack, store: str, staff: list[str], args: argparse.Namespace) -> None:
    db = await asyncpg.connect(asyncpg_dsn(stack.database_url("engagement")))
    try:
        deadline = time.monotonic() + 120
        while (
            await db.fetchval("SELECT count(*) FROM customer_file WHERE store_id = $1", store)
            < args.customers
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("the customer files did not reach engagement")
            await asyncio.sleep(1)
        customers = [
            r["customer_id"]
            for r in await db.fetch(
                "SELECT customer_id FROM customer_file WHERE store_id = $1", store
            )
        ]
        rng = random.Random(SEED)
        tiers = [
            rng.choices([t for t, _ in TIERS], weights=[w for _, w in TIERS])[0] for _ in customers
        ]
        await db.execute(
            """
            INSERT INTO customer_score_seen (customer_id, store_id, version, value_tier)
            SELECT c, $1, 1, t FROM unnest($2::text[], $3::text[]) AS x(c, t)
            """,
            store,
            customers,
            tiers,
        )
        today = datetime.now(ZoneInfo(ZONE)).date()
        started = time.perf_counter()
        await db.execute("SELECT setseed(0.11)")
        await db.execute(_TASKS_SQL, store, staff, customers, today, args.tasks)
        await db.execute("ANALYZE task")
        await db.execute("ANALYZE customer_score_seen")
        log(f"  {args.tasks:,} tasks in {time.perf_counter() - started:.0f} s")
    finally:
        await db.close()


async def measure(stack: LocalStack, store: str, staff_id: str, token: str, requests: int) -> bool:
    url = stack.url("gateway") + "/api/v1/tasks"
    params = {"assignee": "me", "due": "today"}
    db = await asyncpg.connect(asyncpg_dsn(stack.database_url("engagement")))
    today = datetime.now(ZoneInfo(ZONE)).date()
    sql = service.statement(store=True, staff=True, after=False)
    args = service.arguments(
        today=today, store_id=store, staff_id=staff_id, after=None, limit=DEFAULT_LIMIT + 1
    )
    timings: dict[str, list[float]] = {"gateway": [], "raw": []}
    errors = 0
    named = 0
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
            for i in range(requests + 20):
                warm = i < 20  # untimed: connections, caches, prepared statements
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
                        await db.fetch(sql, *args)
                    elapsed = time.perf_counter() - started
                    if not warm:
                        timings[target].append(elapsed)
                if i == requests + 19:
                    items = orjson.loads(body)["items"]
                    named = sum(1 for t in items if t["customer_name"])
            lookups = await _name_lookups(
                http, stack, sorted({t["customer_id"] for t in items}), requests
            )
        open_due = await db.fetchval(
            "SELECT count(*) FROM task WHERE store_id = $1 AND assignee_staff_id = $2 "
            "AND status = 'open' AND due_on <= $3",
            store,
            staff_id,
            today,
        )
        plan = orjson.loads(await db.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, *args))
    finally:
        await db.close()
    used = sorted(plan_indexes(plan))
    g50, g99 = p50_p99_ms(timings["gateway"])
    r50, r99 = p50_p99_ms(timings["raw"])
    print(
        f"the staff member's open tasks due today or overdue: {open_due:,}; "
        f"a page of {DEFAULT_LIMIT}, {named} named"
    )
    print(f"{'':<10} {'p50':>8} {'p99':>8}")
    print(f"{'gateway':<10} {g50:>6.1f}ms {g99:>6.1f}ms")
    print(f"{'raw SQL':<10} {r50:>6.1f}ms {r99:>6.1f}ms")
    print(f"ratio p50 {g50 / r50:.2f}, p99 {g99 / r99:.2f}")
    print("the page's names alone, as the staff member (GET /api/v1/customers?ids=):")
    for name, found in lookups.items():
        n50, n99 = p50_p99_ms(found)
        print(f"{name:<10} {n50:>6.1f}ms {n99:>6.1f}ms")
    print(
        f"plan: {', '.join(used) or 'NONE (sequential scan)'}; planning + execution "
        f"{plan[0]['Planning Time'] + plan[0]['Execution Time']:.1f} ms"
    )
    if errors:
        print(f"{errors} requests failed")
    return bool(used) and not errors


async def _name_lookups(
    http: aiohttp.ClientSession, stack: LocalStack, customer_ids: list[str], requests: int
) -> dict[str, list[float]]:
    """The work list's name lookup alone, as the staff member through the gateway, alternating:
    whole files (every file's numbers decrypted, then masked for the role) against the sparse
    read the route asks for (``fields=id,name``)."""
    url = stack.url("gateway") + "/api/v1/customers"
    asked = [("ids", c) for c in customer_ids]
    asked += [("limit", str(len(customer_ids))), ("status", "active")]
    shapes = {"whole": asked, "id,name": [*asked, ("fields", "id,name")]}
    timings: dict[str, list[float]] = {name: [] for name in shapes}
    for i in range(requests + 20):
        for name in ("whole", "id,name") if i % 2 else ("id,name", "whole"):
            params = shapes[name]
            started = time.perf_counter()
            async with http.get(url, params=params) as response:
                await response.read()
            if response.status != 200:
                raise RuntimeError(f"GET {url} ({name}): {response.status}")
            if i >= 20:
                timings[name].append(time.perf_counter() - started)
    return timings


def main() -> int:
    args = parse_args()
    load_1, load_5, _ = os.getloadavg()
    print(
        f"work list benchmark: {args.tasks:,} tasks, {args.staff} staff, {args.customers:,} "
        f"customers in one store, {args.requests} requests per target, one at a time, "
        f"{os.cpu_count()} cores, load average {load_1:.1f}/{load_5:.1f} at start",
        flush=True,
    )
    with temp_stack("crm-bench-worklist-", extra_env=STACK_ENV) as stack:
        log(f"starting PostgreSQL, the broker and the migrations in {stack.data_dir} …")
        stack.start_infrastructure()
        # All four: the gateway is ready only when every service it routes to answers.
        stack.start_services()
        log("creating the store, its staff and customers …")
        store, staff, token = asyncio.run(setup(stack, args))
        log(f"generating {args.tasks:,} tasks …")
        asyncio.run(load(stack, store, staff, args))
        ok = asyncio.run(measure(stack, store, staff[0], token, args.requests))
    load_1, load_5, _ = os.getloadavg()
    print(f"load average {load_1:.1f}/{load_5:.1f} at the end")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
