"""Gateway overhead benchmark: the same requests through the gateway and straight to the service.

    uv run python bench/gateway.py [--requests N] [--concurrency 32]

Starts the whole stack on free loopback ports, creates a store, a product and some customers
through the gateway, then drives two cases with concurrent clients (asyncio + one aiohttp
session): customer reads ``GET /customers/{id}`` and purchase writes
``POST /customers/{id}/purchases``, each through the gateway (``/api/v1/...``) and directly
against the customer service (with the signed ``X-CRM-Principal`` header the gateway would add).
Prints requests/s, p50 and p99 for each, the gateway/direct throughput ratio and the latency
the gateway adds, and CPU milliseconds per request in each process. Exits non-zero if any
request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp
import asyncpg
from support import CpuMeter, LatencySummary, log, postmaster_pid, summarize, temp_stack

from crm_libs.embedded.stack import LocalStack
from crm_libs.principal import PRINCIPAL_HEADER, Principal, Role, sign_principal
from crm_libs.settings import DEV_PRINCIPAL_SECRET

SKU = "BENCH-1"
CUSTOMER_DB = "crm_customer"
Request = Callable[[int], Awaitable[int]]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--requests", type=int, default=2000, help="requests per case and target (default 2000)"
    )
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent clients")
    parser.add_argument("--customers", type=int, default=200, help="customer files to spread over")
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="split each run into rounds, alternating which target goes first (drift cancels)",
    )
    parser.add_argument("--warmup", type=int, default=200, help="untimed requests per target")
    return parser.parse_args()


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)
    cpu: dict[str, float] = field(default_factory=dict)  # cpu-seconds per process
    db_sessions: int = 0  # connections the customer service opened to PostgreSQL meanwhile

    def summary(self) -> LatencySummary:
        return summarize(self.latencies, self.seconds, sum(self.errors.values()))


async def drive(request: Request, n: int, concurrency: int, ok: int, run: Run) -> None:
    """``n`` requests from ``concurrency`` workers sharing one counter; adds to ``run``."""
    numbers = iter(range(n))

    async def worker() -> None:
        for i in numbers:
            started = time.perf_counter()
            try:
                status = await request(i)
            except (aiohttp.ClientError, TimeoutError) as exc:
                run.errors[type(exc).__name__] += 1
                continue
            run.latencies.append(time.perf_counter() - started)
            if status != ok:
                run.errors[str(status)] += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    run.seconds += time.perf_counter() - started


def principal_token() -> str:
    secret = os.environ.get("CRM_PRINCIPAL_SECRET", DEV_PRINCIPAL_SECRET)
    return sign_principal(
        Principal(subject="bench", role=Role.HQ_ADMIN), secret=secret, ttl_seconds=600
    )


async def gateway_headers(session: aiohttp.ClientSession, api: str, password: str) -> dict:
    """No credentials while the gateway forwards everyone as head office; a bearer token from
    ``POST /auth/token`` once it asks for one (API.md)."""
    async with session.get(f"{api}/stores?limit=1") as response:
        if response.status != 401:
            return {}
    user = os.environ.get("CRM_BOOTSTRAP_ADMIN_USER", "admin")
    async with session.post(
        f"{api}/auth/token", json={"username": user, "password": password}
    ) as response:
        response.raise_for_status()
        token = (await response.json())["access_token"]
    return {"Authorization": f"Bearer {token}"}


async def create(session: aiohttp.ClientSession, url: str, body: dict, headers: dict) -> dict:
    async with session.post(url, json=body, headers=headers) as response:
        if response.status != 201:
            raise RuntimeError(f"POST {url}: {response.status} {await response.text()}")
        return await response.json()


async def setup(
    session: aiohttp.ClientSession, api: str, headers: dict, customers: int
) -> list[str]:
    suffix = secrets.token_hex(3)
    store = await create(
        session,
        f"{api}/stores",
        {"code": f"BENCH-{suffix}", "name": "Benchmark store", "timezone": "Asia/Shanghai"},
        headers,
    )
    await create(
        session,
        f"{api}/products",
        {
            "sku": SKU,
            "name": "Benchmark product",
            "category": "bench",
            "unit_price": "12.50",
            "days_per_unit": 30,
        },
        headers,
    )
    ids = []
    for i in range(customers):
        customer = await create(
            session,
            f"{api}/customers",
            {"store_id": store["id"], "name": f"Bench Customer {i:04d}"},
            headers,
        )
        ids.append(customer["id"])
    return ids


def make_requests(
    session: aiohttp.ClientSession, base: str, headers: dict, customers: list[str]
) -> dict[str, tuple[Request, int]]:
    async def read(i: int) -> int:
        async with session.get(
            f"{base}/customers/{customers[i % len(customers)]}", headers=headers
        ) as response:
            await response.read()
            return response.status

    async def purchase(i: int) -> int:
        body = {
            "purchased_at": datetime.now(UTC).isoformat(),
            "items": [{"sku": SKU, "qty": 1 + i % 3}],
        }
        async with session.post(
            f"{base}/customers/{customers[i % len(customers)]}/purchases",
            json=body,
            headers=headers,
        ) as response:
            await response.read()
            return response.status

    return {
        "GET /customers/{id}": (read, 200),
        "POST /customers/{id}/purchases": (purchase, 201),
    }


async def customer_db_sessions(conn: asyncpg.Connection) -> int:
    """Sessions ever opened to the customer database (a pool that churns opens many)."""
    return int(
        await conn.fetchval("SELECT sessions FROM pg_stat_database WHERE datname = $1", CUSTOMER_DB)
    )


async def measure(stack: LocalStack, args: argparse.Namespace, password: str) -> bool:
    api = stack.url("gateway") + "/api/v1"
    direct = stack.url("customer")
    stats = await asyncpg.connect(stack.postgres.url("postgres", driver="postgresql"))
    try:
        return await _measure(stack, args, password, api, direct, stats)
    finally:
        await stats.close()


async def _measure(
    stack: LocalStack,
    args: argparse.Namespace,
    password: str,
    api: str,
    direct: str,
    stats: asyncpg.Connection,
) -> bool:
    # Idle keep-alive connections are dropped after 1 s, well before uvicorn closes them (5 s):
    # reusing one that the server is closing at that instant fails with a reset, which would be
    # a client artefact between rounds, not a cost of the gateway.
    connector = aiohttp.TCPConnector(
        limit=args.concurrency * 2, limit_per_host=args.concurrency, keepalive_timeout=1.0
    )
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        gw_headers = await gateway_headers(session, api, password)
        log(f"creating a store, a product and {args.customers} customers through the gateway …")
        customers = await setup(session, api, gw_headers, args.customers)
        targets = {
            "direct": make_requests(
                session, direct, {PRINCIPAL_HEADER: principal_token()}, customers
            ),
            "gateway": make_requests(session, api, gw_headers, customers),
        }
        processes = {
            "gateway": stack.processes["gateway"].pid,
            "customer": stack.processes["customer"].pid,
            "postgres": postmaster_pid(stack),
            "scoring": stack.processes["scoring"].pid,
            "engagement": stack.processes["engagement"].pid,
            "client": os.getpid(),
        }
        results: dict[tuple[str, str], Run] = {}
        for case in targets["direct"]:
            log(f"{case} …")
            for requests in targets.values():
                request, ok = requests[case]
                await drive(request, args.warmup, args.concurrency, ok, Run())
            per_round = max(1, args.requests // args.rounds)
            for round_no in range(args.rounds):
                order = ["direct", "gateway"] if round_no % 2 == 0 else ["gateway", "direct"]
                for target in order:
                    request, ok = targets[target][case]
                    run = results.setdefault((case, target), Run())
                    meter = CpuMeter(processes)
                    sessions_before = await customer_db_sessions(stats)
                    meter.start()
                    await drive(request, per_round, args.concurrency, ok, run)
                    meter.stop()
                    run.db_sessions += await customer_db_sessions(stats) - sessions_before
                    for name, secs in meter.used.items():
                        run.cpu[name] = run.cpu.get(name, 0.0) + secs
    return report(results, args)


def report(results: dict[tuple[str, str], Run], args: argparse.Namespace) -> bool:
    failed = False
    print(f"{'case':32} {'target':8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    cases = dict.fromkeys(case for case, _ in results)
    for case in cases:
        summaries = {}
        for target in ("direct", "gateway"):
            run = results[(case, target)]
            s = summaries[target] = run.summary()
            print(
                f"{case:32} {target:8} {s.rps:8,.0f} {s.p50_ms:8.1f} {s.p99_ms:8.1f} {s.errors:7d}"
            )
            if run.errors:
                failed = True
                print(f"{'':32} errors: {dict(run.errors)}")
        d, g = summaries["direct"], summaries["gateway"]
        print(
            f"{'':32} gateway/direct throughput {g.rps / d.rps:.2f}; gateway adds "
            f"{g.p50_ms - d.p50_ms:+.1f} ms at p50, {g.p99_ms - d.p99_ms:+.1f} ms at p99"
        )
        for target in ("direct", "gateway"):
            run = results[(case, target)]
            n = max(1, len(run.latencies) + sum(run.errors.values()))
            per_request = ", ".join(
                f"{name} {secs / n * 1000:.2f}"
                for name, secs in sorted(run.cpu.items(), key=lambda kv: -kv[1])
                if secs > 0
            )
            print(f"{'':32} cpu-ms per request, {target}: {per_request}")
        print(
            f"{'':32} PostgreSQL connections opened by the customer service: "
            f"direct {results[(case, 'direct')].db_sessions}, "
            f"gateway {results[(case, 'gateway')].db_sessions}"
        )
    return not failed


def main() -> int:
    args = parse_args()
    print(
        f"gateway benchmark: {args.requests:,} requests per case and target, "
        f"{args.concurrency} concurrent clients (one aiohttp session), loopback, "
        f"{args.rounds} rounds alternating which target goes first, {os.cpu_count()} cores",
        flush=True,
    )
    password = secrets.token_urlsafe(18)
    env = {"CRM_LOG_LEVEL": "WARNING", "CRM_BOOTSTRAP_ADMIN_PASSWORD": password}
    with temp_stack("crm-bench-gateway-", extra_env=env) as stack:
        log(f"starting the stack in {stack.data_dir} …")
        stack.start()
        ok = asyncio.run(measure(stack, args, password))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
