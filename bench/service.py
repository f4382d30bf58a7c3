"""The customer service against a minimal FastAPI + asyncpg app doing the same work, same run.

    uv run python bench/service.py [--requests N] [--concurrency 32] [--profile DIR]

Starts PostgreSQL, the broker and the migrations (``LocalStack.start_infrastructure()``), the
customer service, and ``bench/baseline_app.py`` on the customer service's own database; creates a
store, a product and some customers through the service (a signed head-office principal, as the
gateway would forward it), then drives the same requests at both with concurrent clients
(asyncio + one aiohttp session), in alternating rounds: customer reads ``GET /customers/{id}``
and purchase writes ``POST /customers/{id}/purchases``. Prints requests/s, p50 and p99 for each,
the service/baseline throughput ratio against the target, CPU milliseconds per request in each
process and the PostgreSQL connections opened meanwhile. Exits non-zero if any request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import asyncpg
from http_load import READ, WRITE, Run, drive, make_requests, store_with_customers
from pgstats import customer_db_sessions
from proc_cpu import CpuMeter, postmaster_pid
from support import PySpy, find_py_spy, log, temp_stack

from crm_devstack.processes import spawn, stop_children
from crm_devstack.stack import LocalStack, free_port
from crm_libs.principal import PRINCIPAL_HEADER, Principal, Role, sign_principal
from crm_libs.settings import DEV_PRINCIPAL_SECRET

SERVICE, BASELINE = "service", "baseline"
# The goal: the service at least half as fast as the bare app doing the same work.
TARGET_RATIO = 0.5
STACK_ENV = {"CRM_LOG_LEVEL": "WARNING"}


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
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes for the service (CRM_WORKERS) and the baseline alike",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="sample the service with py-spy during its rounds; collapsed stacks per case in DIR",
    )
    return parser.parse_args()


def principal_headers() -> dict[str, str]:
    """What the gateway forwards for head office (signed for the whole run)."""
    secret = os.environ.get("CRM_PRINCIPAL_SECRET", DEV_PRINCIPAL_SECRET)
    token = sign_principal(
        Principal(subject="bench", role=Role.HQ_ADMIN), secret=secret, ttl_seconds=3600
    )
    return {PRINCIPAL_HEADER: token}


def start_baseline(stack: LocalStack, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["CRM_DATABASE_URL"] = stack.database_url("customer")
    return spawn(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "baseline_app:create_app",
            "--factory",
            "--app-dir",
            str(Path(__file__).parent),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "warning",
            "--loop",
            "uvloop",
        ],
        env=env,
    )


async def wait_ready(session: aiohttp.ClientSession, url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {process.returncode}")
        try:
            async with session.get(url) as response:
                if response.status in (200, 404):
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{url} did not answer")


async def setup(
    session: aiohttp.ClientSession, service: str, headers: dict, customers: int
) -> list[str]:
    """Customer ids in a new store (no phone or health data: nothing to mask or audit)."""
    _, ids = await store_with_customers(session, service, headers, customers)
    return ids


async def same_answers(
    session: aiohttp.ClientSession, urls: dict[str, str], headers: dict, customer: str
) -> None:
    """The baseline must answer a read exactly like the service, or the ratio means nothing."""
    bodies = {}
    for name, base in urls.items():
        async with session.get(f"{base}/customers/{customer}", headers=headers) as response:
            bodies[name] = await response.json()
    if bodies[SERVICE] != bodies[BASELINE]:
        raise RuntimeError(f"the baseline answers differently: {bodies}")


async def measure(
    stack: LocalStack, baseline_url: str, baseline: subprocess.Popen, args: argparse.Namespace
) -> bool:
    stats = await asyncpg.connect(stack.postgres.url("postgres", driver="postgresql"))
    # Idle keep-alive connections are dropped after 1 s, before uvicorn closes them (5 s).
    connector = aiohttp.TCPConnector(
        limit=args.concurrency * 2, limit_per_host=args.concurrency, keepalive_timeout=1.0
    )
    headers = principal_headers()
    urls = {SERVICE: stack.url("customer"), BASELINE: baseline_url}
    try:
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            await wait_ready(session, f"{baseline_url}/customers/none", baseline)
            log(f"creating a store, a product and {args.customers} customers …")
            customers = await setup(session, urls[SERVICE], headers, args.customers)
            await same_answers(session, urls, headers, customers[0])
            targets = {
                name: make_requests(session, base, headers, customers)
                for name, base in urls.items()
            }
            processes = {
                SERVICE: stack.processes["customer"].pid,
                BASELINE: baseline.pid,
                "postgres": postmaster_pid(stack),
                "client": os.getpid(),
            }
            results: dict[tuple[str, str], Run] = {}
            py_spy = find_py_spy() if args.profile else None
            if args.profile and not py_spy:
                log("py-spy not found (uv tool install py-spy): not profiling")
            for case in (READ, WRITE):
                log(f"{case} …")
                for target in targets:
                    request, ok = targets[target][case]
                    await drive(request, args.warmup, args.concurrency, ok, Run())
                per_round = max(1, args.requests // args.rounds)
                for round_no in range(args.rounds):
                    order = list(targets) if round_no % 2 == 0 else list(targets)[::-1]
                    for target in order:
                        request, ok = targets[target][case]
                        run = results.setdefault((case, target), Run())
                        # Worker processes (--workers) count with their parent.
                        meter = CpuMeter(processes, trees=("postgres", SERVICE, BASELINE))
                        spy = None
                        if py_spy and target == SERVICE:
                            args.profile.mkdir(parents=True, exist_ok=True)
                            name = "read" if case == READ else "write"
                            out = args.profile / f"service-{name}-{round_no}.txt"
                            spy = PySpy(py_spy, processes[SERVICE], out)
                        sessions_before = await customer_db_sessions(stats)
                        meter.start()
                        await drive(request, per_round, args.concurrency, ok, run)
                        meter.stop()
                        if spy:
                            spy.stop()
                        run.db_sessions += await customer_db_sessions(stats) - sessions_before
                        for name, secs in meter.used.items():
                            run.cpu[name] = run.cpu.get(name, 0.0) + secs
                        rest = meter.machine_busy - sum(meter.used.values())
                        run.cpu["rest of machine"] = run.cpu.get("rest of machine", 0.0) + rest
    finally:
        await stats.close()
    return report(results)


def report(results: dict[tuple[str, str], Run]) -> bool:
    failed = False
    indent = " " * 33
    print(f"{'case':32} {'target':9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for case in dict.fromkeys(case for case, _ in results):
        summaries = {}
        for target in (SERVICE, BASELINE):
            run = results[(case, target)]
            s = summaries[target] = run.summary()
            print(
                f"{case:32} {target:9} {s.rps:8,.0f} {s.p50_ms:8.1f} {s.p99_ms:8.1f} {s.errors:7d}"
            )
            if run.errors:
                failed = True
                print(f"{indent}errors: {dict(run.errors)}")
        ratio = summaries[SERVICE].rps / summaries[BASELINE].rps
        verdict = "met" if ratio >= TARGET_RATIO else "missed"
        print(
            f"{indent}service/baseline throughput {ratio:.2f} "
            f"(target >= {TARGET_RATIO:.2f}: {verdict}); the service adds "
            f"{summaries[SERVICE].p50_ms - summaries[BASELINE].p50_ms:+.1f} ms at p50"
        )
        for target in (SERVICE, BASELINE):
            run = results[(case, target)]
            n = max(1, run.requests)
            per_request = ", ".join(
                f"{name} {secs / n * 1000:.2f}"
                for name, secs in sorted(run.cpu.items(), key=lambda kv: -kv[1])
                if secs > 0
            )
            print(f"{indent}cpu-ms per request, {target}: {per_request}")
        sessions = ", ".join(f"{t} {results[(case, t)].db_sessions}" for t in (SERVICE, BASELINE))
        print(f"{indent}PostgreSQL connections opened to the customer database: {sessions}")
    return not failed


def main() -> int:
    args = parse_args()
    print(
        f"service benchmark: {args.requests:,} requests per case and target, "
        f"{args.concurrency} concurrent clients (one aiohttp session), loopback, "
        f"{args.rounds} rounds alternating the order of the targets, {args.workers} worker "
        f"process(es) each, {os.cpu_count()} cores",
        flush=True,
    )
    env = {**STACK_ENV, "CRM_WORKERS": str(args.workers)}
    with temp_stack("crm-bench-service-", extra_env=env) as stack:
        log(f"starting PostgreSQL, the broker and the customer service in {stack.data_dir} …")
        stack.start_infrastructure()
        stack.start_service("customer")
        stack.wait_healthy("customer")
        port = free_port()
        baseline = start_baseline(stack, port, args.workers)
        try:
            ok = asyncio.run(measure(stack, f"http://127.0.0.1:{port}", baseline, args))
        finally:
            stop_children([baseline], signals=(signal.SIGINT,), grace=(10.0,))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
