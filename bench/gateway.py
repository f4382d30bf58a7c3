"""Gateway overhead benchmark: the same requests through the gateway and straight to the service.

    uv run python bench/gateway.py [--requests N] [--concurrency 32]

Starts the whole stack on free loopback ports (rate limits raised out of the way), signs in as
the bootstrap administrator, creates a store, a product and some customers through the gateway
and issues a partner API key for the store, then drives two cases with concurrent clients
(asyncio + one aiohttp session): customer reads ``GET /customers/{id}`` and purchase writes
``POST /customers/{id}/purchases``, each directly against the customer service (with the signed
``X-CRM-Principal`` header the gateway would add) and through the gateway (``/api/v1/...``) with
the administrator's bearer token; reads also with the partner key (``X-API-Key``).
Prints requests/s, p50 and p99 for each, the gateway/direct throughput ratio and the latency
the gateway adds at p99 against their targets, CPU milliseconds per request in each process
(a service's worker processes counted with it) and, for
reads, how many transactions the gateway's own database ran per request. Exits non-zero if any
request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from dataclasses import dataclass

import aiohttp
import asyncpg
import http_load
from http_load import (
    READ,
    WRITE,
    Request,
    create,
    drive,
    make_requests,
    sign_in,
    store_with_customers,
)
from pgstats import GatewayDb, customer_db_sessions, gateway_db_counters, set_autovacuum
from proc_cpu import CpuMeter, postmaster_pid
from support import log, temp_stack

from crm_devstack.stack import LocalStack
from crm_libs.principal import PRINCIPAL_HEADER, Principal, Role, sign_principal
from crm_libs.settings import DEV_PRINCIPAL_SECRET

DIRECT, GATEWAY, GATEWAY_KEY = "direct", "gateway", "gateway+key"
# The goals: through the gateway at least 70% of the direct throughput, and no more than 10 ms
# added to the 99th percentile at 32 clients.
TARGET_RATIO = 0.7
TARGET_ADDED_P99_MS = 10.0
# Servers whose worker processes count with them (uvicorn --workers, PostgreSQL's backends).
PROCESS_TREES = ("postgres", "gateway", "customer", "scoring", "engagement")
# Limits high enough never to trigger: the benchmark measures the cost of checking them.
STACK_ENV = {
    "CRM_RATE_LIMIT": "1000000/minute",
    "CRM_API_KEY_RATE_LIMIT": "1000000/minute",
    "CRM_LOG_LEVEL": "WARNING",
}
# The gateway writes when API keys were last used every 5 s: wait for that after key requests.
LAST_USED_FLUSH_SECONDS = 5.5


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
        help="split each run into rounds, alternating the order of the targets (drift cancels)",
    )
    parser.add_argument("--warmup", type=int, default=200, help="untimed requests per target")
    return parser.parse_args()


@dataclass
class Run(http_load.Run):
    gateway_db: GatewayDb | None = None  # what the gateway's own database did meanwhile


def principal_token() -> str:
    secret = os.environ.get("CRM_PRINCIPAL_SECRET", DEV_PRINCIPAL_SECRET)
    return sign_principal(
        Principal(subject="bench", role=Role.HQ_ADMIN), secret=secret, ttl_seconds=900
    )


async def setup(
    session: aiohttp.ClientSession, api: str, headers: dict, customers: int
) -> tuple[list[str], str]:
    """Customer ids in a new store, and a partner API key for that store."""
    store, ids = await store_with_customers(session, api, headers, customers)
    key = await create(
        session, f"{api}/api-keys", {"store_id": store, "name": "bench partner"}, headers
    )
    return ids, str(key["key"])


async def check_gateway_db(
    stats: asyncpg.Connection, requests: dict[str, tuple[Request, int]], n: int, concurrency: int
) -> dict[str, Run]:
    """``n`` reads per gateway target, each between two quiet readings of the gateway
    database's counters: what the gateway itself did in its database for them."""
    out: dict[str, Run] = {}
    await set_autovacuum(stats, on=False)
    try:
        counters = await gateway_db_counters(stats)
        for target, (request, ok) in requests.items():
            run = out[target] = Run()
            await drive(request, n, concurrency, ok, run)
            if target == GATEWAY_KEY:
                await asyncio.sleep(LAST_USED_FLUSH_SECONDS)
            counters, before = await gateway_db_counters(stats), counters
            run.gateway_db = counters - before
    finally:
        await set_autovacuum(stats, on=True)
    return out


async def measure(stack: LocalStack, args: argparse.Namespace) -> bool:
    api = stack.url("gateway") + "/api/v1"
    direct = stack.url("customer")
    stats = await asyncpg.connect(stack.postgres.url("postgres", driver="postgresql"))
    try:
        return await _measure(stack, args, api, direct, stats)
    finally:
        await stats.close()


async def _measure(
    stack: LocalStack,
    args: argparse.Namespace,
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
        # Filled in again before every case, so no token runs out during a long run.
        token = await sign_in(session, api, stack.admin_password)
        admin_headers = {"Authorization": f"Bearer {token}"}
        direct_headers: dict[str, str] = {}
        log(
            f"creating a store, a product, {args.customers} customers and a partner API key "
            "through the gateway …"
        )
        customers, api_key = await setup(session, api, admin_headers, args.customers)
        targets = {
            DIRECT: make_requests(session, direct, direct_headers, customers),
            GATEWAY: make_requests(session, api, admin_headers, customers),
            GATEWAY_KEY: {
                READ: make_requests(session, api, {"X-API-Key": api_key}, customers)[READ]
            },
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
        for case in (READ, WRITE):
            log(f"{case} …")
            direct_headers[PRINCIPAL_HEADER] = principal_token()
            token = await sign_in(session, api, stack.admin_password)
            admin_headers["Authorization"] = f"Bearer {token}"
            names = [target for target in targets if case in targets[target]]
            for target in names:
                request, ok = targets[target][case]
                await drive(request, args.warmup, args.concurrency, ok, Run())
            per_round = max(1, args.requests // args.rounds)
            for round_no in range(args.rounds):
                order = names if round_no % 2 == 0 else names[::-1]
                for target in order:
                    request, ok = targets[target][case]
                    run = results.setdefault((case, target), Run())
                    meter = CpuMeter(processes, trees=PROCESS_TREES)
                    sessions_before = await customer_db_sessions(stats)
                    meter.start()
                    await drive(request, per_round, args.concurrency, ok, run)
                    meter.stop()
                    run.db_sessions += await customer_db_sessions(stats) - sessions_before
                    for name, secs in meter.used.items():
                        run.cpu[name] = run.cpu.get(name, 0.0) + secs
                    # The broker, the kernel and whatever else shares the machine.
                    rest = meter.machine_busy - sum(meter.used.values())
                    run.cpu["rest of machine"] = run.cpu.get("rest of machine", 0.0) + rest
        # Last, so that pausing autovacuum cannot touch the timings above.
        log("counting the gateway database's transactions on reads (waits for quiet) …")
        checks = await check_gateway_db(
            stats,
            {target: targets[target][READ] for target in (GATEWAY, GATEWAY_KEY)},
            args.requests,
            args.concurrency,
        )
    return report(results, checks)


def report(results: dict[tuple[str, str], Run], checks: dict[str, Run]) -> bool:
    failed = False
    indent = " " * 33
    print(f"{'case':32} {'target':11} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    cases = dict.fromkeys(case for case, _ in results)
    for case in cases:
        targets = [target for c, target in results if c == case]
        summaries = {}
        for target in targets:
            run = results[(case, target)]
            s = summaries[target] = run.summary()
            print(
                f"{case:32} {target:11} {s.rps:8,.0f} {s.p50_ms:8.1f} {s.p99_ms:8.1f} {s.errors:7d}"
            )
            if run.errors:
                failed = True
                print(f"{indent}errors: {dict(run.errors)}")
        d = summaries[DIRECT]
        for target in targets:
            if target == DIRECT:
                continue
            g = summaries[target]
            ratio = g.rps / d.rps
            verdict = "met" if ratio >= TARGET_RATIO else "missed"
            added_p99 = g.p99_ms - d.p99_ms
            p99_verdict = "met" if added_p99 <= TARGET_ADDED_P99_MS else "missed"
            print(
                f"{indent}{target}/direct throughput {ratio:.2f} "
                f"(target >= {TARGET_RATIO:.2f}: {verdict}); adds "
                f"{g.p50_ms - d.p50_ms:+.1f} ms at p50, {added_p99:+.1f} ms at p99 "
                f"(target <= {TARGET_ADDED_P99_MS:.0f}: {p99_verdict})"
            )
        for target in targets:
            run = results[(case, target)]
            n = max(1, run.requests)
            per_request = ", ".join(
                f"{name} {secs / n * 1000:.2f}"
                for name, secs in sorted(run.cpu.items(), key=lambda kv: -kv[1])
                if secs > 0
            )
            print(f"{indent}cpu-ms per request, {target}: {per_request}")
        if case == READ:
            print(f"{indent}gateway database transactions per request (autovacuum paused):")
            for target, run in checks.items():
                db = run.gateway_db or GatewayDb()
                print(
                    f"{indent}  {target:11} {db.transactions / max(1, run.requests):.4f} "
                    f"({db.transactions} in {run.requests:,} reads, "
                    f"{db.sessions} connections opened)"
                )
                if run.errors:
                    failed = True
                    print(f"{indent}  errors: {dict(run.errors)}")
        sessions = ", ".join(f"{t} {results[(case, t)].db_sessions}" for t in targets)
        print(f"{indent}PostgreSQL connections opened by the customer service: {sessions}")
    return not failed


def main() -> int:
    args = parse_args()
    print(
        f"gateway benchmark: {args.requests:,} requests per case and target, "
        f"{args.concurrency} concurrent clients (one aiohttp session), loopback, "
        f"{args.rounds} rounds alternating the order of the targets, {os.cpu_count()} cores",
        flush=True,
    )
    with temp_stack("crm-bench-gateway-", extra_env=STACK_ENV) as stack:
        log(f"starting the stack in {stack.data_dir} …")
        stack.start()
        ok = asyncio.run(measure(stack, args))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
