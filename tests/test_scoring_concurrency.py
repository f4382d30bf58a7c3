"""Two scoring replicas in one consumer group rank one store exactly like a from-scratch pass.

A stack of its own (the session's stack runs one scoring instance that other tests rely on).
Purchases go in through the gateway, many at once, with spends near each other so tiers keep
crossing boundaries while both members re-rank the same store, and with dates out of order so
back-dated purchases arrive after newer ones.
"""

import asyncio
import random
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from crm_devstack.fixtures import eventually, throwaway_stack
from crm_devstack.stack import LocalStack
from crm_libs.events.envelope import Topics
from scoring_service.scores.aggregates import extend_supply
from scoring_service.scores.tiers import tier_for
from tests.builders import create_customer, create_product, create_store, record_purchase
from tests.consumer_groups import instance_url, partition_of, processed_partitions, stable_members

CUSTOMERS = 30
PURCHASES_EACH = 3
DAYS_PER_UNIT = 30


@pytest.fixture(scope="module")
def pair_stack() -> Iterator[LocalStack]:
    with throwaway_stack({"CRM_RATE_LIMIT": "1000000/minute"}) as local:
        local.start_service("scoring", replica="2")
        yield local


@pytest.fixture
async def pair_api(pair_stack: LocalStack) -> AsyncIterator[httpx.AsyncClient]:
    base = pair_stack.url("gateway") + "/api/v1"
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        token = await client.post(
            "/auth/token", json={"username": "admin", "password": pair_stack.admin_password}
        )
        token.raise_for_status()
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        yield client


def expected_tier(spend: Decimal, spends: list[Decimal]) -> str:
    """DOMAIN §3 from the totals: p = spenders with strictly more / spenders."""
    return tier_for(sum(1 for other in spends if other > spend), len(spends))


async def test_two_members_give_the_tiers_and_run_outs_of_a_from_scratch_computation(
    pair_stack: LocalStack, pair_api: httpx.AsyncClient
) -> None:
    async def two_members() -> bool:
        return await stable_members(pair_stack.broker.bootstrap, "scoring") == 2

    await eventually(two_members, timeout=60)
    store = await create_store(pair_api, timezone="UTC")
    product = await create_product(pair_api, days_per_unit=DAYS_PER_UNIT)
    customers = [
        (await create_customer(pair_api, store_id=store["id"]))["id"] for _ in range(CUSTOMERS)
    ]

    rng = random.Random(20261201)
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    spend: dict[str, Decimal] = defaultdict(Decimal)
    days: dict[str, list[date]] = defaultdict(list)
    orders = []
    for customer in customers:
        for _ in range(PURCHASES_EACH):
            # Cents apart around 30.00: many near-ties, so every purchase moves boundaries.
            price = Decimal("30.00") + Decimal(rng.randint(-3, 3)) / 100
            at = today - timedelta(days=rng.randint(1, 120))
            spend[customer] += price
            days[customer].append(at.date())
            orders.append((customer, price, at))
    rng.shuffle(orders)  # one customer's purchases arrive out of date order too
    limit = asyncio.Semaphore(16)

    async def buy(customer: str, price: Decimal, at: datetime) -> None:
        async with limit:
            await record_purchase(
                pair_api,
                customer_id=customer,
                sku=product["sku"],
                unit_price=f"{price}",
                purchased_at=at.isoformat(),
            )

    await asyncio.gather(*(buy(*order) for order in orders))

    spends = list(spend.values())
    want = {
        c: (
            expected_tier(spend[c], spends),
            PURCHASES_EACH,
            _runs_out(sorted(days[c])).isoformat(),
        )
        for c in customers
    }

    async def scored() -> dict[str, tuple[str, int, str]]:
        responses = await asyncio.gather(*(pair_api.get(f"/customers/{c}/score") for c in want))
        got = {}
        for customer, response in zip(want, responses, strict=True):
            if response.status_code == 200:
                body = response.json()
                got[customer] = (
                    body["value_tier"],
                    body["stats"]["purchase_count"],
                    body["supply_runs_out_on"],
                )
        return got

    async def all_counted() -> bool:
        got = await scored()
        return all(got.get(c, (None, 0))[1] == PURCHASES_EACH for c in want)

    await eventually(all_counted, timeout=120, interval=0.5)
    # Each batch commits its counts with its re-rank: with every count in, the tiers are final.
    got = await scored()
    assert {c: tier for c, (tier, _, _) in got.items()} == {c: t for c, (t, _, _) in want.items()}
    assert got == want  # and the run-out dates, as if every purchase had come in date order
    # Both members applied purchases of this store, each from partitions of its own.
    members = [
        await processed_partitions(instance_url(pair_stack, key), Topics.PURCHASES)
        for key in ("scoring", "scoring/2")
    ]
    assert all(members) and not set(members[0]) & set(members[1])
    ours = {partition_of(c, Topics.PURCHASES).partition for c in customers}
    assert ours <= set(members[0]) | set(members[1])
    assert all(ours & set(m) for m in members)


def _runs_out(days_in_order: list[date]) -> date:
    runs_out: date | None = None
    for day in days_in_order:
        runs_out = extend_supply(runs_out, purchased_on=day, supply_days=DAYS_PER_UNIT)
    assert runs_out is not None
    return runs_out
