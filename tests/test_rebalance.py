"""Consumer-group rebalances: a second scoring instance joins and leaves while purchases flow."""

import asyncio
from decimal import Decimal

import httpx

from crm_devstack.fixtures import eventually
from crm_devstack.stack import LocalStack
from crm_libs.events.envelope import Topics
from scoring_service.scores.tiers import tier_for
from tests.builders import create_customer, create_product, create_store, record_purchase, score_of
from tests.consumer_groups import instance_url, partition_of, processed_partitions, stable_members


async def test_nothing_lost_or_doubled_while_a_replica_joins_and_leaves(
    stack: LocalStack, api: httpx.AsyncClient
) -> None:
    store = await create_store(api)
    product = await create_product(api)
    customers = [(await create_customer(api, store_id=store["id"]))["id"] for _ in range(12)]
    # Unequal spends: one vip, two medium, nine small (p = greater / 12).
    price = {c: Decimal(10 * (i + 1)) for i, c in enumerate(customers)}
    expected = dict.fromkeys(customers, 0)
    ours = {partition_of(c, Topics.PURCHASES).partition for c in customers}

    async def buy_round() -> None:
        for customer in customers:
            await record_purchase(
                api, customer_id=customer, sku=product["sku"], unit_price=f"{price[customer]}.00"
            )
            expected[customer] += 1

    replica = stack.start_service("scoring", replica="second")
    try:

        async def second_applied_ours() -> bool:
            # The second member owned some of these customers' partitions and applied from them.
            await buy_round()  # purchases keep coming while the group rebalances
            if await stable_members(stack.broker.bootstrap, "scoring") != 2:
                return False
            applied = await processed_partitions(instance_url(stack, replica), Topics.PURCHASES)
            return bool(ours & set(applied))

        await eventually(second_applied_ours, timeout=90, interval=1)
    finally:
        stack.stop_service(replica)  # and once more when it leaves
    await buy_round()

    async def all_counted() -> bool:
        scores = await asyncio.gather(*(score_of(api, c) for c in expected))
        counts = [s["stats"]["purchase_count"] if s else 0 for s in scores]
        return counts == list(expected.values())

    assert await eventually(all_counted, timeout=90)
    await asyncio.sleep(2)  # nothing applied twice after the rebalance settles
    assert await all_counted()

    spend = {c: price[c] * expected[c] for c in customers}
    want = {
        c: tier_for(sum(1 for o in spend.values() if o > s), len(spend)) for c, s in spend.items()
    }
    scores = await asyncio.gather(*(score_of(api, c) for c in customers))
    assert {c: s["value_tier"] for c, s in zip(customers, scores, strict=True) if s} == want
    assert sorted(want.values()) == ["medium"] * 2 + ["small"] * 9 + ["vip"]
