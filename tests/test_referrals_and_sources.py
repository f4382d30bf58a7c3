"""Sources, referrals and prospects (DOMAIN.md §1) through the gateway: the referral chain
downward with its depth, never looping; a prospect's stage moving forward only (a manager may
correct it); conversion and cost per converted customer per source channel."""

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx

from crm_devstack.stack import LocalStack
from tests.builders import (
    caller_as,
    create_customer,
    create_product,
    create_store,
    record_purchase,
)


async def referrals(api: httpx.AsyncClient, customer_id: str, **params: Any) -> dict[str, Any]:
    response = await api.get(f"/customers/{customer_id}/referrals", params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


def chain(answer: dict[str, Any]) -> list[tuple[str, int, str]]:
    return [(i["customer_id"], i["depth"], i["referred_by"]) for i in answer["items"]]


async def test_the_referral_chain_downward_with_depth_pages_and_no_loop(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    store = await create_store(api)
    a = await create_customer(api, store_id=store["id"])
    b, c = [await create_customer(api, store_id=store["id"], referrer_id=a["id"]) for _ in "bc"]
    d = await create_customer(api, store_id=store["id"], referrer_id=b["id"])
    e = await create_customer(api, store_id=store["id"], referrer_id=d["id"])
    await create_customer(api, store_id=store["id"])  # referred by nobody: not in any chain

    first = sorted([(b["id"], 1, a["id"]), (c["id"], 1, a["id"])])
    whole = [*first, (d["id"], 2, b["id"]), (e["id"], 3, d["id"])]
    assert chain(await referrals(api, a["id"])) == whole
    assert chain(await referrals(api, a["id"], max_depth=2)) == whole[:3]
    assert chain(await referrals(api, b["id"])) == [(d["id"], 1, b["id"]), (e["id"], 2, d["id"])]
    assert chain(await referrals(api, e["id"])) == []
    paged: list[tuple[str, int, str]] = []
    cursor = None
    while True:
        page = await referrals(api, a["id"], limit=1, **({"cursor": cursor} if cursor else {}))
        paged += chain(page)
        if not (cursor := page["next_cursor"]):
            break
    assert paged == whole
    too_deep = await api.get(f"/customers/{a['id']}/referrals", params={"max_depth": 21})
    assert too_deep.status_code == 422

    # A referrer below the file in its own chain is refused: the API cannot close a loop.
    looped = await api.patch(f"/customers/{a['id']}", json={"referrer_id": e["id"]})
    assert looped.status_code == 422, looped.text
    assert looped.json()["errors"][0]["field"] == "referrer_id"
    # Written around the API all the same, the walk still ends, each file once.
    conn = await asyncpg.connect(stack.postgres.url("crm_customer", driver="postgresql"))
    try:
        await conn.execute("UPDATE customer SET referrer_id = $1 WHERE id = $2", e["id"], a["id"])
        assert chain(await referrals(api, a["id"])) == whole
        assert chain(await referrals(api, b["id"])) == [
            (d["id"], 1, b["id"]),
            (e["id"], 2, d["id"]),
            (a["id"], 3, e["id"]),
            (c["id"], 4, a["id"]),
        ]
    finally:
        await conn.execute("UPDATE customer SET referrer_id = NULL WHERE id = $1", a["id"])
        await conn.close()

    elsewhere = await create_store(api)
    async with await caller_as(api, "store_manager", store_id=elsewhere["id"]) as stranger:
        response = await stranger.get(f"/customers/{a['id']}/referrals")
    assert response.status_code == 404


async def test_a_prospect_moves_forward_only_unless_a_manager_corrects_it(
    api: httpx.AsyncClient,
) -> None:
    store = await create_store(api)
    product = await create_product(api)
    customer = await create_customer(api, store_id=store["id"])
    assert customer["prospect"]["stage"] == "collected"
    url = f"/customers/{customer['id']}"

    def stage(value: str) -> dict[str, Any]:
        return {"prospect": {"stage": value}}

    async with (
        await caller_as(api, "staff", store_id=store["id"]) as staff,
        await caller_as(api, "store_manager", store_id=store["id"]) as manager,
    ):
        moved = await staff.patch(url, json={"prospect": {"stage": "invited", "grade": "A"}})
        assert moved.status_code == 200, moved.text
        assert moved.json()["prospect"] == {"stage": "invited", "grade": "A"}
        back = await staff.patch(url, json=stage("contacted"))
        assert back.status_code == 422
        assert back.json()["errors"][0]["field"] == "prospect.stage"
        corrected = await manager.patch(url, json=stage("contacted"))
        assert corrected.status_code == 200, corrected.text
        assert corrected.json()["prospect"]["stage"] == "contacted"
        # `bought` comes with the first purchase, from nobody's hand.
        for caller in (staff, manager):
            by_hand = await caller.patch(url, json=stage("bought"))
            assert by_hand.status_code == 422
    await record_purchase(api, customer_id=customer["id"], sku=product["sku"])
    assert (await api.get(url)).json()["prospect"]["stage"] == "bought"


async def test_conversion_and_cost_per_converted_customer_by_source(
    api: httpx.AsyncClient,
) -> None:
    store = await create_store(api)
    product = await create_product(api)

    async def opened(channel: str | None, cost: str, *, buys: bool) -> None:
        fields = {"source": {"channel": channel, "method": "血压测量", "cost": cost}}
        customer = await create_customer(api, store_id=store["id"], **(fields if channel else {}))
        if buys:
            await record_purchase(api, customer_id=customer["id"], sku=product["sku"])

    for channel, cost, buys in [
        ("lecture", "10.00", True),
        ("lecture", "10.00", False),
        ("lecture", "10.00", False),
        ("referral", "0.00", True),
        ("referral", "5.50", True),
        (None, "0", False),
    ]:
        await opened(channel, cost, buys=buys)

    url = f"/stores/{store['id']}/analysis/sources"
    response = await api.get(url)
    assert response.status_code == 200, response.text
    by_channel = {i["channel"]: i for i in response.json()["items"]}
    assert by_channel == {
        "lecture": {
            "channel": "lecture",
            "files": 3,
            "converted": 1,
            "conversion_rate": 0.3333,
            "cost": "30.00",
            "cost_per_converted": "30.00",
        },
        "referral": {
            "channel": "referral",
            "files": 2,
            "converted": 2,
            "conversion_rate": 1.0,
            "cost": "5.50",
            "cost_per_converted": "2.75",
        },
        None: {
            "channel": None,
            "files": 1,
            "converted": 0,
            "conversion_rate": 0.0,
            "cost": "0.00",
            "cost_per_converted": None,
        },
    }
    # The period is the store's days: today holds them all, tomorrow none.
    today = datetime.now(ZoneInfo(store["timezone"])).date()
    tomorrow = today + timedelta(days=1)
    same = await api.get(url, params={"from": str(today), "to": str(today)})
    assert same.json()["items"] == response.json()["items"]
    later = await api.get(url, params={"from": str(tomorrow)})
    assert later.status_code == 200 and later.json()["items"] == []
    reversed_window = await api.get(url, params={"from": str(tomorrow), "to": str(today)})
    assert reversed_window.status_code == 422
    assert reversed_window.json()["errors"][0]["field"] == "from"

    elsewhere = await create_store(api)
    async with (
        await caller_as(api, "staff", store_id=store["id"]) as staff,
        await caller_as(api, "store_manager", store_id=store["id"]) as manager,
        await caller_as(api, "store_manager", store_id=elsewhere["id"]) as stranger,
    ):
        assert (await manager.get(url)).json()["items"] == response.json()["items"]
        assert (await staff.get(url)).status_code == 403  # acquisition costs: management's
        assert (await stranger.get(url)).status_code == 404


async def test_a_source_without_a_cost_costs_nothing(api: httpx.AsyncClient) -> None:
    """The cost is optional (0.00): a registration or a change naming only the channel is
    accepted, not a 500."""
    store = await create_store(api)
    customer = await create_customer(api, store_id=store["id"], source={"channel": "lecture"})
    url = f"/customers/{customer['id']}"
    assert (await api.get(url)).json()["source"]["cost"] == "0.00"
    changed = await api.patch(url, json={"source": {"channel": "referral", "method": "朋友"}})
    assert changed.status_code == 200, changed.text
    assert changed.json()["source"]["channel"] == "referral"
    assert changed.json()["source"]["cost"] == "0.00"
