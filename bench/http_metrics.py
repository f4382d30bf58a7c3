"""What the request metrics cost: one simple GET served with and without the instrumentator.

    uv run python bench/http_metrics.py [--requests N] [--concurrency 32] [--rounds 3]

Starts two uvicorn processes on free loopback ports serving the same small app (the services'
request-ID middleware and problem handlers, ``GET /customers/{customer_id}`` answering a few
bytes of JSON, no database): one plain, one with ``crm_libs.metrics.instrument_app``. Drives
them in alternating rounds with concurrent clients (asyncio + one aiohttp session) and prints
requests/s, p50, p99 and server CPU per request for each, and the instrumented/plain ratios.
The route does no work, so the ratio is the middleware's worst case; a real request (database,
forwarding) dilutes it.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from fastapi import FastAPI
from proc_cpu import cpu_seconds
from support import LatencySummary, log, summarize

from crm_libs.metrics import instrument_app
from crm_libs.problems import install_problem_handlers
from crm_libs.request_id import RequestIdMiddleware

PLAIN, INSTRUMENTED = "plain", "instrumented"


def _app(*, instrumented: bool) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(RequestIdMiddleware)
    if instrumented:
        instrument_app(app)

    @app.get("/customers/{customer_id}")
    async def read(customer_id: str) -> dict[str, str]:
        return {"id": customer_id, "name": "bench"}

    return app


def plain_app() -> FastAPI:
    return _app(instrumented=False)


def instrumented_app() -> FastAPI:
    return _app(instrumented=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(factory: str, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            f"http_metrics:{factory}",
            "--factory",
            "--app-dir",
            str(Path(__file__).parent),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
            "--loop",
            "uvloop",
        ]
    )


async def wait_ready(session: aiohttp.ClientSession, url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            async with session.get(url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{url} did not answer")


async def drive(
    session: aiohttp.ClientSession, base: str, n: int, concurrency: int
) -> tuple[list[float], float, int]:
    """``n`` GETs of distinct ids from ``concurrency`` workers: latencies, seconds, errors."""
    numbers = iter(range(n))
    latencies: list[float] = []
    errors = 0

    async def worker() -> None:
        nonlocal errors
        for i in numbers:
            started = time.perf_counter()
            async with session.get(f"{base}/customers/c{i}") as response:
                await response.read()
                if response.status != 200:
                    errors += 1
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started, errors


async def measure(args: argparse.Namespace) -> int:
    ports = {PLAIN: free_port(), INSTRUMENTED: free_port()}
    servers = {
        PLAIN: start_server("plain_app", ports[PLAIN]),
        INSTRUMENTED: start_server("instrumented_app", ports[INSTRUMENTED]),
    }
    try:
        connector = aiohttp.TCPConnector(limit=args.concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            bases = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
            for base in bases.values():
                await wait_ready(session, f"{base}/customers/warm")
                await drive(session, base, 500, args.concurrency)  # warm-up
            latencies: dict[str, list[float]] = {PLAIN: [], INSTRUMENTED: []}
            seconds = dict.fromkeys(latencies, 0.0)
            cpu = dict.fromkeys(latencies, 0.0)
            errors = dict.fromkeys(latencies, 0)
            # Alternating rounds, so a neighbour's load on the shared cores hits both alike.
            for round_number in range(args.rounds):
                for name in (PLAIN, INSTRUMENTED):
                    cpu_before = cpu_seconds(servers[name].pid)
                    run = await drive(session, bases[name], args.requests, args.concurrency)
                    cpu[name] += cpu_seconds(servers[name].pid) - cpu_before
                    latencies[name] += run[0]
                    seconds[name] += run[1]
                    errors[name] += run[2]
                    log(f"round {round_number + 1} {name}: {args.requests / run[1]:.0f} req/s")
            summaries: dict[str, LatencySummary] = {
                name: summarize(latencies[name], seconds[name], errors[name]) for name in latencies
            }
    finally:
        for server in servers.values():
            server.terminate()
            server.wait(10)
    print(f"{'case':<14}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'cpu µs/req':>12}")
    for name, summary in summaries.items():
        per_request = cpu[name] / len(latencies[name]) * 1e6
        print(
            f"{name:<14}{summary.rps:>10.0f}{summary.p50_ms:>10.2f}{summary.p99_ms:>10.2f}"
            f"{per_request:>12.0f}"
        )
    throughput = summaries[INSTRUMENTED].rps / summaries[PLAIN].rps
    cpu_ratio = (cpu[INSTRUMENTED] / len(latencies[INSTRUMENTED])) / (
        cpu[PLAIN] / len(latencies[PLAIN])
    )
    print(f"instrumented/plain: throughput {throughput:.2f}, CPU per request {cpu_ratio:.2f}")
    return 1 if any(errors.values()) else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="per round and case")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    return asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
