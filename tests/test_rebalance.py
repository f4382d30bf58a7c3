"""Consumer-group rebalances: a second scoring instance joins and leaves while purchases flow."""

import asyncio

import httpx

from crm_devstack.fixtures import eventually
from crm_devstack.stack import LocalStack
from tests.builders import create_customer, create_product, create_store, record_purchase, score_of


async def test_nothing_lost_or_doubled_while_a_replica_joins_and_leaves(
    stack: LocalStack, api: httpx.AsyncClient
) -> None:
    store = await create_store(api)
    product = await create_product(api)
    customers = [await create_customer(api, store_id=store["id"]) for _ in range(12)]
    expected = dict.fromkeys((c["id"] for c in customers), 0)

    async def buy_round() -> None:
        for customer in customers:
            await record_purchase(api, customer_id=customer["id"], sku=product["sku"])
            expected[customer["id"]] += 1

    replica = stack.start_service("scoring", replica="second")
    try:
        for _ in range(3):  # purchases keep coming while the group rebalances
            await buy_round()
            await asyncio.sleep(2)
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
