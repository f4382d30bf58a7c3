"""The store the store-day load test (bench/load.py) runs against, seeded through the gateway as
the bootstrap administrator: products, staff on the roster with their accounts, a store
manager's account, customer files with phones and one scored purchase each, a partner API key
per till."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from http_load import sign_in
from support import log

SEED_CONCURRENCY = 16
SCORED_WITHIN_SECONDS = 120


@dataclass
class Admin:
    session: aiohttp.ClientSession
    api: str
    headers: dict[str, str]

    async def call(self, method: str, path: str, body: Any = None, status: int = 201) -> Any:
        async with self.session.request(
            method, f"{self.api}{path}", json=body, headers=self.headers
        ) as response:
            if response.status != status:
                raise RuntimeError(f"{method} {path}: {response.status} {await response.text()}")
            return await response.json()


async def gather_limited(calls: list[Any]) -> list[Any]:
    gate = asyncio.Semaphore(SEED_CONCURRENCY)

    async def one(call: Any) -> Any:
        async with gate:
            return await call

    return await asyncio.gather(*(one(c) for c in calls))


async def seed(gateway: str, password: str, args: argparse.Namespace) -> dict[str, Any]:
    """A store with its roster, accounts, catalogue, customers (each scored) and partner keys."""
    api = f"{gateway}/api/v1"
    suffix = secrets.token_hex(3)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        token = await sign_in(session, api, password)
        admin = Admin(session, api, {"Authorization": f"Bearer {token}"})
        store = await admin.call(
            "POST",
            "/stores",
            {"code": f"DAY-{suffix}", "name": "Load-test store", "timezone": "Asia/Shanghai"},
        )
        skus = [f"DAY-{suffix}-{n}" for n in range(3)]
        for n, sku in enumerate(skus):
            await admin.call(
                "POST",
                "/products",
                {
                    "sku": sku,
                    "name": f"Health product {n}",
                    "category": "supplements",
                    "unit_price": f"{48 + 30 * n}.00",
                    "days_per_unit": 30,
                },
            )
        roster = await gather_limited(
            [
                admin.call(
                    "POST",
                    "/staff",
                    {"store_id": store["id"], "name": f"Staff {i}", "role": "staff"},
                )
                for i in range(args.staff)
            ]
        )

        async def account(role: str, staff_id: str | None) -> dict[str, str]:
            login = {"username": f"day-{suffix}-{role}-{secrets.token_hex(3)}"}
            login["password"] = secrets.token_urlsafe(18)
            body = {**login, "role": role, "store_id": store["id"], "staff_id": staff_id}
            created = await admin.call("POST", "/accounts", body)
            return {**login, "staff_id": staff_id or "", "account_id": created["id"]}

        staff = await gather_limited([account("staff", member["id"]) for member in roster])
        manager = await account("store_manager", None)
        log(f"seeding {args.customers} customer files, one purchase each …")
        # Distinct last 4 digits, so a tail search finds exactly one file in the store.
        phones = [f"1380013{i:04d}" for i in range(args.customers)]
        customers = await gather_limited(
            [
                admin.call(
                    "POST",
                    "/customers",
                    {
                        "store_id": store["id"],
                        "name": f"Customer {i:04d}",
                        "phone": phone,
                        "owner_staff_id": roster[i % len(roster)]["id"],
                    },
                )
                for i, phone in enumerate(phones)
            ]
        )
        now = datetime.now(UTC)
        await gather_limited(
            [
                admin.call(
                    "POST",
                    f"/customers/{c['id']}/purchases",
                    {
                        "purchased_at": (now - timedelta(days=1 + i % 300)).isoformat(),
                        "staff_id": roster[i % len(roster)]["id"],
                        "items": [{"sku": skus[i % len(skus)], "qty": 1 + i % 3}],
                    },
                )
                for i, c in enumerate(customers)
            ]
        )
        keys = [
            (await admin.call("POST", "/api-keys", {"store_id": store["id"], "name": f"till {n}"}))[
                "key"
            ]
            for n in range(args.tills)
        ]
        await wait_until_scored(admin, [c["id"] for c in customers])
    return {
        "store_id": store["id"],
        "skus": skus,
        "customers": [{"id": c["id"], "phone": p} for c, p in zip(customers, phones, strict=True)],
        "staff": staff,
        "manager": {**manager, "staff_id": ""},
        "partner_keys": keys,
    }


async def wait_until_scored(admin: Admin, customer_ids: list[str]) -> None:
    """The mobile app reads scores, which exist once scoring has seen a purchase."""
    log(f"waiting for scoring to score {len(customer_ids)} customers …")
    waiting = list(customer_ids)
    deadline = time.monotonic() + SCORED_WITHIN_SECONDS

    async def unscored(customer_id: str) -> bool:
        async with admin.session.get(
            f"{admin.api}/customers/{customer_id}/score", headers=admin.headers
        ) as response:
            await response.read()
            return response.status != 200

    while waiting:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(waiting)} customers still unscored after the wait")
        still = await gather_limited([unscored(c) for c in waiting])
        waiting = [c for c, s in zip(waiting, still, strict=True) if s]
        if waiting:
            await asyncio.sleep(0.5)
