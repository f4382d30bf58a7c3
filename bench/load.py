"""A store's day under load, through the gateway: Locust, headless, with a store seeded for it.

    uv run python bench/load.py [--users 32] [--duration 60] [--think 0,0] [--gateway URL]

Starts the whole stack on free loopback ports (or uses the one at ``--gateway``), seeds a store
through the gateway as the bootstrap administrator (products, staff on the roster with their
accounts, a store manager's account, customer files with phones, one scored purchase each, a
partner API key per till), then runs ``bench/locustfile.py`` in a Locust process of its own
(Locust patches the standard library with gevent; nothing of that reaches this process or
pytest). Prints requests/s and p50/p95/p99 per route and the failures; exits non-zero if any
request failed (a 5xx, an unexpected 4xx, a wrong answer) or a route was never exercised.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from load_seed import seed
from proc_cpu import CpuMeter, postmaster_pid
from support import log, percentile, temp_stack

from crm_devstack.stack import LocalStack
from crm_libs.settings import DEV_BOOTSTRAP_ADMIN_PASSWORD

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
# Limits high enough never to trigger from one loopback address: the run measures the limiter's
# cost, not its refusals (the defaults: 1200 and 600 a minute, 30 sign-ins a minute per address).
STACK_ENV = {
    "CRM_RATE_LIMIT": "1000000/minute",
    "CRM_API_KEY_RATE_LIMIT": "1000000/minute",
    "CRM_SIGN_IN_RATE_LIMIT": "1000000/minute",
    "CRM_LOG_LEVEL": "WARNING",
}
# Servers that may run worker processes: their CPU counts with their children's.
PROCESS_TREES = ("postgres", "gateway", "customer", "scoring", "engagement")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=32, help="simulated users (default 32)")
    parser.add_argument("--duration", type=int, default=60, help="seconds of load (default 60)")
    parser.add_argument(
        "--think",
        default="0,0",
        help="seconds each user waits between tasks, 'min,max' (default 0,0: as fast as served)",
    )
    parser.add_argument("--customers", type=int, default=300, help="customer files to seed")
    parser.add_argument("--staff", type=int, default=8, help="staff accounts to seed")
    parser.add_argument(
        "--tills", type=int, help="till users, one partner key each (default: users / 16, >= 1)"
    )
    parser.add_argument(
        "--apps", type=int, help="mobile-app users reading scores (default: users / 8, >= 1)"
    )
    parser.add_argument(
        "--gateway",
        help="use the stack whose gateway is at this URL instead of starting one (the "
        "administrator's password from CRM_BOOTSTRAP_ADMIN_PASSWORD; its rate limits apply)",
    )
    parser.add_argument("--summary-json", type=Path, help="also write the summary here")
    args = parser.parse_args(argv)
    args.tills = args.tills if args.tills is not None else max(1, args.users // 16)
    args.apps = args.apps if args.apps is not None else max(1, args.users // 8)
    if args.tills + args.apps >= args.users:
        parser.error("--users must leave at least one staff user beside the tills and apps")
    return args


# --- seeding a store's day through the gateway ------------------------------------------------


# --- running Locust and reporting -------------------------------------------------------------


def run_locust(gateway: str, plan: dict[str, Any], args: argparse.Namespace, work: Path) -> int:
    plan_file, results_file = work / "plan.json", work / "results.json"
    plan_file.write_text(json.dumps(plan))
    env = {
        **os.environ,
        "CRM_LOAD_PLAN": str(plan_file),
        "CRM_LOAD_RESULTS": str(results_file),
        "CRM_LOAD_THINK": args.think,
        "CRM_LOAD_TILLS": str(args.tills),
        "CRM_LOAD_APPS": str(args.apps),
    }
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--users",
        str(args.users),
        "--spawn-rate",
        str(args.users),
        "--run-time",
        f"{args.duration}s",
        "--stop-timeout",
        "10",
        "--host",
        f"{gateway}/api/v1",
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    log(
        f"Locust: {args.users} users ({args.users - args.tills - args.apps} staff, "
        f"{args.tills} tills, {args.apps} mobile apps) for {args.duration} s, think {args.think} s"
    )
    # Locust's own table goes to stderr with the progress; the results below go to stdout.
    return subprocess.run(command, env=env, stdout=sys.stderr, check=False).returncode


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    """Per route: requests/s and percentiles over the steady state (from the moment every user
    was signed in to the end); sign-ins over the whole run; failures over the whole run."""
    started, stopped = results["started"], results["stopped"]
    steady = results["steady"] or started
    routes: dict[str, dict[str, Any]] = {}
    every: list[float] = []
    for route in results["routes"]:
        since = started if route == results["sign_in"] else steady
        done = results["requests"].get(route, [])
        latencies = sorted(ms for at, ms in done if at >= since)
        failures = results["failures"].get(route, [])
        seconds = stopped - since
        routes[route] = {
            "requests": len(latencies),
            "requests_whole_run": len(done),
            "failures": len(failures),
            "per_second": len(latencies) / seconds if seconds > 0 else 0.0,
            "p50_ms": percentile(latencies, 50),
            "p95_ms": percentile(latencies, 95),
            "p99_ms": percentile(latencies, 99),
            "failure_samples": sorted(set(failures))[:5],
        }
        if route != results["sign_in"]:
            every.extend(latencies)
    every.sort()
    seconds = stopped - steady
    return {
        "seconds": stopped - started,
        "steady_seconds": seconds,
        "steady_after_seconds": steady - started if results["steady"] else None,
        "routes": routes,
        "requests": len(every),
        "per_second": len(every) / seconds if seconds > 0 else 0.0,
        "p50_ms": percentile(every, 50),
        "p95_ms": percentile(every, 95),
        "p99_ms": percentile(every, 99),
        "failures": sum(r["failures"] for r in routes.values()),
        "not_exercised": [route for route, r in routes.items() if not r["requests_whole_run"]],
    }


def report(summary: dict[str, Any]) -> None:
    after = summary["steady_after_seconds"]
    print(
        f"steady state: {summary['steady_seconds']:.1f} s, from {after:.1f} s in, when every "
        "user had signed in (sign-ins: over the whole run)"
        if after is not None
        else "not every user signed in before the end: figures over the whole run"
    )
    print(f"{'route':34} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    rows = [*summary["routes"].items(), ("all but sign-in", summary)]
    for route, r in rows:
        print(
            f"{route:34} {r['requests']:>9,} {r['per_second']:>8.1f} "
            f"{r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} {r['p99_ms']:>8.1f}"
        )
    print(f"failures: {summary['failures']} over {summary['seconds']:.1f} s of load")
    for route, r in summary["routes"].items():
        for sample in r["failure_samples"]:
            print(f"  {route}: {sample}")
    if summary["not_exercised"]:
        print("never exercised: " + ", ".join(summary["not_exercised"]))
    if "cpu_seconds" in summary:
        # Over the whole run, sign-ins (a deliberately slow password check) included.
        done = sum(r["requests_whole_run"] for r in summary["routes"].values())
        used = sorted(summary["cpu_seconds"].items(), key=lambda kv: -kv[1])
        print(
            f"CPU ms per request over the whole run ({done:,} requests): "
            + ", ".join(f"{name} {secs * 1000 / max(1, done):.2f}" for name, secs in used)
        )
        print(
            f"machine busy {summary['machine_busy_cores']:.2f} of {os.cpu_count()} cores "
            "(anything else running on it included)"
        )


def measure(gateway: str, password: str, args: argparse.Namespace, stack: LocalStack | None) -> int:
    plan = asyncio.run(seed(gateway, password, args))
    meter = None
    if stack is not None:
        processes = {name: process.pid for name, process in stack.processes.items()}
        meter = CpuMeter({**processes, "postgres": postmaster_pid(stack)}, trees=PROCESS_TREES)
        meter.start()
    locust_before = _children_cpu_seconds()
    with tempfile.TemporaryDirectory(prefix="crm-load-") as work:
        code = run_locust(gateway, plan, args, Path(work))
        results_file = Path(work) / "results.json"
        if not results_file.exists():
            log(f"Locust wrote no results (exit code {code})")
            return code or 1
        summary = summarise(json.loads(results_file.read_text()))
    if meter is not None:
        meter.stop()
        used = {**meter.used, "locust (the users)": _children_cpu_seconds() - locust_before}
        # The broker, the kernel and whatever else shares the machine.
        used["rest of machine"] = meter.machine_busy - sum(used.values())
        summary["cpu_seconds"] = used
        summary["machine_busy_cores"] = (
            meter.machine_busy / meter.machine_total * (os.cpu_count() or 1)
            if meter.machine_total
            else 0.0
        )
    report(summary)
    if args.summary_json:
        args.summary_json.write_text(json.dumps({**summary, "locust_exit_code": code}))
    failed = code != 0 or summary["failures"] > 0 or bool(summary["not_exercised"])
    return 1 if failed else 0


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(
        f"store-day load test: {args.users} users for {args.duration} s through the gateway, "
        f"think {args.think} s, {args.customers} customer files, {os.cpu_count()} cores",
        flush=True,
    )
    if args.gateway:
        password = os.environ.get("CRM_BOOTSTRAP_ADMIN_PASSWORD", DEV_BOOTSTRAP_ADMIN_PASSWORD)
        return measure(args.gateway.rstrip("/"), password, args, None)
    with temp_stack("crm-bench-load-", extra_env=STACK_ENV) as stack:
        log(f"starting the stack in {stack.data_dir} …")
        stack.start()
        return measure(stack.url("gateway"), stack.admin_password, args, stack)


if __name__ == "__main__":
    sys.exit(main())
