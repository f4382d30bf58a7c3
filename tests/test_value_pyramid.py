"""The value pyramid per store (DOMAIN §3), through the gateway and the broker."""

import asyncio
from decimal import Decimal

import httpx

from crm_devstack.fixtures import eventually
from scoring_service.scores.tiers import tier_for
from tests.builders import create_customer, create_product, create_store, record_purchase, score_of


async def _customers_with_spend(
    api: httpx.AsyncClient, store_id: str, sku: str, spends: list[int]
) -> list[str]:
    async def one(spend: int) -> str:
        customer = await create_customer(api, store_id=store_id)
        await record_purchase(
            api, customer_id=customer["id"], sku=sku, qty=1, unit_price=f"{spend}.00"
        )
        return customer["id"]

    ids = []
    for chunk in range(0, len(spends), 16):
        ids.extend(await asyncio.gather(*(one(s) for s in spends[chunk : chunk + 16])))
    return ids


async def _tiers(api: httpx.AsyncClient, ids: list[str]) -> list[str | None]:
    scores = await asyncio.gather(*(score_of(api, i) for i in ids))
    return [s["value_tier"] if s else None for s in scores]


def _expected(spends: list[int]) -> list[str]:
    return [tier_for(sum(1 for o in spends if o > s), len(spends)) for s in spends]


async def test_hundred_customers_split_1_4_15_80_and_a_new_purchase_moves_the_others(
    api: httpx.AsyncClient,
) -> None:
    store = await create_store(api)
    product = await create_product(api)
    spends = [100 + 10 * i for i in range(100)]
    ids = await _customers_with_spend(api, store["id"], product["sku"], spends)

    async def settled() -> list[str | None] | None:
        tiers = await _tiers(api, ids)
        return tiers if tiers == _expected(spends) else None

    tiers = await eventually(settled, timeout=60)
    assert [tiers.count(t) for t in ("vip", "major", "medium", "small")] == [1, 4, 15, 80]
    top = ids[spends.index(max(spends))]

    # Five new big spenders push everyone down: the old top customer leaves vip without buying.
    newcomers = [5000 + i for i in range(5)]
    new_ids = await _customers_with_spend(api, store["id"], product["sku"], newcomers)
    all_spends, all_ids = spends + newcomers, ids + new_ids

    async def moved() -> list[str | None] | None:
        tiers = await _tiers(api, all_ids)
        return tiers if tiers == _expected(all_spends) else None

    await eventually(moved, timeout=60)
    old_top = await score_of(api, top)
    assert old_top is not None and old_top["value_tier"] == "major"
    assert old_top["stats"]["purchase_count"] == 1
    assert old_top["version"] >= 2


async def test_equal_spend_gives_equal_tier(api: httpx.AsyncClient) -> None:
    store = await create_store(api)
    product = await create_product(api)
    ids = await _customers_with_spend(api, store["id"], product["sku"], [300, 300, 300])

    async def all_scored() -> list[str | None] | None:
        tiers = await _tiers(api, ids)
        return tiers if all(t not in (None, "prospect") for t in tiers) else None

    assert await eventually(all_scored) == ["vip", "vip", "vip"]


def test_tier_rule_boundaries() -> None:
    assert tier_for(0, 1) == "vip"
    assert tier_for(0, 100) == "vip" and tier_for(1, 100) == "major"
    assert tier_for(4, 100) == "major" and tier_for(5, 100) == "medium"
    assert tier_for(19, 100) == "medium" and tier_for(20, 100) == "small"
    assert Decimal(1) / Decimal(101) < Decimal("0.01")
    assert tier_for(1, 101) == "vip"
