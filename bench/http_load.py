"""Closed-loop HTTP load for the benchmarks: ``n`` requests from a fixed number of workers."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp
from support import LatencySummary, summarize

# The two cases the service and gateway benchmarks measure, on customers of one product.
SKU = "BENCH-1"
READ = "GET /customers/{id}"
WRITE = "POST /customers/{id}/purchases"

# Sends request number i and returns its status.
Request = Callable[[int], Awaitable[int]]


@dataclass
class Run:
    """What one case against one target measured, summed over its rounds."""

    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)
    cpu: dict[str, float] = field(default_factory=dict)  # cpu-seconds per process
    db_sessions: int = 0  # connections the customer service opened to PostgreSQL meanwhile

    @property
    def requests(self) -> int:
        return len(self.latencies) + sum(self.errors.values())

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


async def create(session: aiohttp.ClientSession, url: str, body: dict, headers: dict) -> dict:
    async with session.post(url, json=body, headers=headers) as response:
        if response.status != 201:
            raise RuntimeError(f"POST {url}: {response.status} {await response.text()}")
        result: dict = await response.json()
        return result


async def sign_in(session: aiohttp.ClientSession, api: str, password: str) -> str:
    """The bootstrap administrator's bearer token (``POST /auth/token``, valid 15 minutes)."""
    user = os.environ.get("CRM_BOOTSTRAP_ADMIN_USER", "admin")
    async with session.post(
        f"{api}/auth/token", json={"username": user, "password": password}
    ) as response:
        if response.status != 200:
            raise RuntimeError(f"sign-in as {user}: {response.status} {await response.text()}")
        return str((await response.json())["access_token"])


async def store_with_customers(
    session: aiohttp.ClientSession, base: str, headers: dict, customers: int
) -> tuple[str, list[str]]:
    """A new store, the product ``SKU`` and ``customers`` files in the store: the store's id and
    the files'. No phone or health data: reading such a file discloses nothing, so there is no
    audit entry to write and the read path is authentication, limits and forwarding."""
    store = await create(
        session,
        f"{base}/stores",
        {"code": f"BENCH-{secrets.token_hex(3)}", "name": "Bench", "timezone": "Asia/Shanghai"},
        headers,
    )
    await create(
        session,
        f"{base}/products",
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
            f"{base}/customers",
            {"store_id": store["id"], "name": f"Bench Customer {i:04d}"},
            headers,
        )
        ids.append(str(customer["id"]))
    return str(store["id"]), ids


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

    return {READ: (read, 200), WRITE: (purchase, 201)}
