"""Concurrent redemptions on one member: never beyond the balance, and what they cost against
the same number of plain purchases on the same member, same run.

    uv run python bench/points.py [--requests 200] [--points 75] [--balance 10000]

Starts the whole stack in a throwaway directory and, as the admin through the gateway, creates a
store (on the default rules: one point a yuan), a product and one customer, and buys enough for
``--balance`` points (one point redeemed once to warm the route; the balance is read after it).
Then:

1. **Redemptions**: ``--requests`` ``POST /customers/{id}/points/redemptions`` of ``--points``
   each at once (one ``Idempotency-Key`` each, every request in flight together), so their total
   exceeds the balance. Each answer must be 201 or 409 (the balance named). Checks: accepted ×
   points ≤ the starting balance, exactly as many accepted as the balance covers (⌊balance /
   points⌋: all redemptions are the same size, so a refusal while the balance held enough is a
   lost update's twin), the final balance = start − accepted × points, the ledger's redemptions
   are the accepted ones and no ``balance_after`` is negative; then ten accepted keys replayed at
   once answer their first answers and take nothing more.
2. **Purchases**: the same number of plain ``POST /customers/{id}/purchases`` (one line, no key)
   on the same customer at once: each earns points on the same account row, so they queue on the
   same lock the redemptions do.

Prints requests/s and p50/p99 of both and the ratio redemptions/purchases. Exits 1 on any
overspend, a wrong count or balance, a negative ``balance_after`` or an unexpected status.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp
from support import LatencySummary, log, summarize, temp_stack

from crm_devstack.stack import LocalStack

# Rate limits out of the way: the figure is the service's, not the gateway's budget.
STACK_ENV = {"CRM_LOG_LEVEL": "WARNING", "CRM_RATE_LIMIT": "1000000/minute"}
UNIT_PRICE = "100.00"
REPLAYS = 10


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--points", type=int, default=75)
    parser.add_argument("--balance", type=int, default=10_000, help="a multiple of 100")
    return parser.parse_args()


async def _call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    body: dict[str, Any] | None = None,
    *,
    expect: int = 200,
    headers: dict[str, str] | None = None,
) -> Any:
    async with http.request(method, url, json=body, headers=headers) as response:
        found = await response.json()
        if response.status != expect:
            raise RuntimeError(f"{method} {url}: {response.status} {found}")
        return found


async def _timed(
    http: aiohttp.ClientSession, url: str, body: dict[str, Any], headers: dict[str, str]
) -> tuple[int, float, Any]:
    started = time.perf_counter()
    async with http.post(url, json=body, headers=headers) as response:
        found = await response.json(content_type=None)
    return response.status, time.perf_counter() - started, found


async def _burst(
    http: aiohttp.ClientSession, url: str, bodies: list[dict[str, Any]], keys: list[str | None]
) -> tuple[list[tuple[int, float, Any]], float]:
    """Every request in flight at once; the answers in order and the wall time."""
    started = time.perf_counter()
    answers = await asyncio.gather(
        *(
            _timed(http, url, body, {"Idempotency-Key": key} if key else {})
            for body, key in zip(bodies, keys, strict=True)
        )
    )
    return list(answers), time.perf_counter() - started


async def _ledger(http: aiohttp.ClientSession, api: str, customer: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {"limit": "500", **({"cursor": cursor} if cursor else {})}
        async with http.get(f"{api}/customers/{customer}/points", params=params) as response:
            page = await response.json()
        items += page["items"]
        if not (cursor := page["next_cursor"]):
            return items


async def _balance(http: aiohttp.ClientSession, api: str, customer: str) -> int:
    card = await _call(http, "GET", f"{api}/customers/{customer}/membership")
    return int(card["points_balance"])


def _row(name: str, s: LatencySummary) -> str:
    return f"{name:<12} {s.count:>5} {s.rps:>9.1f} {s.p50_ms:>8.1f}ms {s.p99_ms:>8.1f}ms"


async def run(stack: LocalStack, args: argparse.Namespace) -> list[str]:
    """The failures (none: every check held)."""
    api = stack.url("gateway") + "/api/v1"
    async with aiohttp.ClientSession() as http:
        token = (
            await _call(
                http,
                "POST",
                f"{api}/auth/token",
                {"username": "admin", "password": stack.admin_password},
            )
        )["access_token"]
    failures: list[str] = []
    # Every request of a burst on its own connection: the default pool of 100 would queue half.
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(
        headers={"Authorization": f"Bearer {token}"}, connector=connector
    ) as http:
        suffix = uuid.uuid4().hex[:6]
        store = await _call(
            http,
            "POST",
            f"{api}/stores",
            {"code": f"PT{suffix}", "name": "Points", "timezone": "Asia/Shanghai"},
            expect=201,
        )
        product = await _call(
            http,
            "POST",
            f"{api}/products",
            {
                "sku": f"PT-{suffix}",
                "name": "鱼油",
                "category": "supplements",
                "unit_price": UNIT_PRICE,
                "days_per_unit": 30,
            },
            expect=201,
        )
        customer = (
            await _call(
                http,
                "POST",
                f"{api}/customers",
                {"store_id": store["id"], "name": "王芳"},
                expect=201,
            )
        )["id"]
        purchases_url = f"{api}/customers/{customer}/purchases"
        redeem_url = f"{api}/customers/{customer}/points/redemptions"

        def purchase(qty: int) -> dict[str, Any]:
            return {
                "purchased_at": datetime.now(UTC).isoformat(),
                "items": [{"sku": product["sku"], "qty": qty, "unit_price": UNIT_PRICE}],
            }

        # One point a yuan: the balance in yuan, plus the point the warm-up takes.
        await _call(http, "POST", purchases_url, purchase(args.balance // 100), expect=201)
        await _call(http, "POST", purchases_url, purchase(1), expect=201)
        await _call(
            http,
            "POST",
            redeem_url,
            {"points": 99, "gift": "warm-up"},
            expect=201,
            headers={"Idempotency-Key": f"warm-{suffix}"},
        )
        await _call(
            http,
            "POST",
            redeem_url,
            {"points": 1, "gift": "warm-up"},
            expect=201,
            headers={"Idempotency-Key": f"warm1-{suffix}"},
        )
        start = await _balance(http, api, customer)
        redeemed_before = sum(
            1 for e in await _ledger(http, api, customer) if e["kind"] == "redeem"
        )
        log(
            f"balance {start:,} points; {args.requests} redemptions of {args.points} at once "
            f"({args.requests * args.points:,} points asked) …"
        )

        keys: list[str | None] = [f"r-{suffix}-{i}" for i in range(args.requests)]
        bodies = [{"points": args.points, "gift": "血压计"} for _ in keys]
        answers, wall = await _burst(http, redeem_url, bodies, keys)
        accepted = [(k, a) for k, a in zip(keys, answers, strict=True) if a[0] == 201]
        unexpected = [a for a in answers if a[0] not in (201, 409)]
        for status, _, found in unexpected[:5]:
            log(f"  unexpected {status}: {str(found)[:200]}")
        if unexpected:
            failures.append(f"{len(unexpected)} redemptions answered neither 201 nor 409")
        redemptions = summarize([a[1] for a in answers], wall, errors=len(unexpected))

        covered = start // args.points
        end = await _balance(http, api, customer)
        taken = len(accepted) * args.points
        if taken > start:
            failures.append(f"OVERSPENT: {len(accepted)} × {args.points} = {taken} > {start}")
        if len(accepted) != covered:
            failures.append(f"{len(accepted)} accepted where the balance covers {covered}")
        if end != start - taken:
            failures.append(f"final balance {end}, expected {start} − {taken} = {start - taken}")
        ledger = await _ledger(http, api, customer)
        negative = [e for e in ledger if e["balance_after"] < 0]
        if negative:
            failures.append(f"{len(negative)} ledger rows with a negative balance_after")
        redeemed = sum(1 for e in ledger if e["kind"] == "redeem") - redeemed_before
        if redeemed != len(accepted):
            failures.append(
                f"the ledger holds {redeemed} new redemptions, {len(accepted)} accepted"
            )
        afters = sorted(a[2]["balance_after"] for _, a in accepted)
        if afters != sorted(start - args.points * (i + 1) for i in range(len(accepted))):
            failures.append("the accepted answers' balance_after are not one per step down")

        replayed = accepted[:REPLAYS]
        again, _ = await _burst(http, redeem_url, bodies[: len(replayed)], [k for k, _ in replayed])
        if [(a[0], a[2]) for a in again] != [(a[0], a[2]) for _, a in replayed]:
            failures.append("a replayed key answered differently from its first answer")
        if await _balance(http, api, customer) != end:
            failures.append("replayed keys took points again")

        log(f"{args.requests} plain purchases at once on the same customer …")
        answers, wall = await _burst(
            http, purchases_url, [purchase(1) for _ in keys], [None] * len(keys)
        )
        refused = [a for a in answers if a[0] != 201]
        for status, _, found in refused[:5]:
            log(f"  unexpected {status}: {str(found)[:200]}")
        if refused:
            failures.append(f"{len(refused)} purchases answered other than 201")
        purchases = summarize([a[1] for a in answers], wall, errors=len(refused))
        earned = await _balance(http, api, customer) - end
        if earned != args.requests * 100:
            failures.append(f"the purchases earned {earned} points, expected {args.requests * 100}")

    print(
        f"start balance {start:,}; {len(accepted)} of {args.requests} redemptions of "
        f"{args.points} accepted ({taken:,} points, the balance covers {covered}), "
        f"{args.requests - len(accepted) - len(unexpected)} refused (409); final balance "
        f"{end:,}; ledger min balance_after {min(e['balance_after'] for e in ledger):,}; "
        f"{len(replayed)} keys replayed"
    )
    print(f"{'':<12} {'count':>5} {'req/s':>9} {'p50':>10} {'p99':>10}")
    print(_row("redemptions", redemptions))
    print(_row("purchases", purchases))
    print(
        f"ratio redemptions/purchases: req/s {redemptions.rps / purchases.rps:.2f}, "
        f"p50 {redemptions.p50_ms / purchases.p50_ms:.2f}, "
        f"p99 {redemptions.p99_ms / purchases.p99_ms:.2f}"
    )
    return failures


def main() -> int:
    args = parse_args()
    load_1, load_5, _ = os.getloadavg()
    print(
        f"points benchmark: {args.requests} concurrent redemptions of {args.points} on one "
        f"member of {args.balance:,} points through the gateway, then as many purchases; "
        f"{os.cpu_count()} cores, load average {load_1:.1f}/{load_5:.1f} at start",
        flush=True,
    )
    with temp_stack("crm-bench-points-", extra_env=STACK_ENV) as stack:
        log(f"starting the stack in {stack.data_dir} …")
        stack.start_infrastructure()
        stack.start_services()
        failures = asyncio.run(run(stack, args))
    load_1, load_5, _ = os.getloadavg()
    print(f"load average {load_1:.1f}/{load_5:.1f} at the end")
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
