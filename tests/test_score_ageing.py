"""The daily ageing end to end, on a stack of its own whose scoring clock is pinned
(``CRM_AS_OF``: "now" is the end of that day, UTC) and moved by restarting scoring.

A customer who bought last year and the year before, with no member event, is
``active_second_line``; when the year turns in Asia/Shanghai (16:00 UTC on 31 December, UTC
still in the old year) the store's ageing makes them ``in_service_not_bought`` with no purchase
or event of theirs: ``score.changed`` is published and the customer service's read copy follows.
A restart on the same day ages nothing again.
"""

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime

import asyncpg
import httpx
import pytest

from crm_devstack.fixtures import eventually, throwaway_stack
from crm_devstack.stack import LocalStack
from crm_libs.db import asyncpg_dsn
from tests.builders import create_customer, create_product, create_store, record_purchase

# The last year turn before today: the purchases below are in the past of the real clock, which
# the customer service checks; scoring's clock is pinned around the turn.
NEW_YEAR = datetime.now(UTC).year
LAST_YEAR = NEW_YEAR - 1
EVE = date(LAST_YEAR, 12, 30)  # scoring's now: 30 Dec 23:59:59 UTC, 31 Dec 07:59 in Shanghai
TURN = date(LAST_YEAR, 12, 31)  # 31 Dec 23:59:59 UTC, already 1 January in Shanghai


@pytest.fixture(scope="module")
def ageing_stack() -> Iterator[LocalStack]:
    env = {
        "CRM_RATE_LIMIT": "1000000/minute",
        "CRM_AS_OF": EVE.isoformat(),
        "CRM_AGEING_CHECK_SECONDS": "0.5",
    }
    with throwaway_stack(env) as local:
        yield local


@pytest.fixture
async def ageing_api(ageing_stack: LocalStack) -> AsyncIterator[httpx.AsyncClient]:
    base = ageing_stack.url("gateway") + "/api/v1"
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        token = await client.post(
            "/auth/token", json={"username": "admin", "password": ageing_stack.admin_password}
        )
        token.raise_for_status()
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        yield client


def restart_scoring(stack: LocalStack, *, as_of: date) -> None:
    """Move scoring's clock: the same service, started again with another ``as_of``."""
    stack.stop_service("scoring")
    stack.extra_env["CRM_AS_OF"] = as_of.isoformat()
    stack.start_service("scoring")
    stack.wait_healthy("scoring")


async def in_segment(api: httpx.AsyncClient, store: str, customer: str, lifecycle: str) -> bool:
    """Whether scoring lists the customer in this lifecycle, and the customer service's read
    copy (its search filter) does too."""
    scores = await api.get("/scores", params={"store_id": store, "lifecycle": lifecycle})
    files = await api.get("/customers", params={"store_id": store, "lifecycle": lifecycle})
    return customer in {s["customer_id"] for s in scores.json()["items"]} and customer in {
        f["id"] for f in files.json()["items"]
    }


async def ageing_trail(stack: LocalStack, store: str) -> tuple[date | None, object, list]:
    """The store's last ageing (day, time) and its customers' changes recorded by ageings."""
    conn = await asyncpg.connect(asyncpg_dsn(stack.database_url("scoring")))
    try:
        aged = await conn.fetchrow(
            "SELECT aged_on, aged_at FROM store_ageing WHERE store_id = $1", store
        )
        changes = await conn.fetch(
            "SELECT customer_id, field, previous, value FROM score_history "
            "WHERE store_id = $1 AND cause = 'ageing' ORDER BY id",
            store,
        )
    finally:
        await conn.close()
    return (
        aged["aged_on"] if aged else None,
        aged["aged_at"] if aged else None,
        [tuple(c) for c in changes],
    )


async def test_the_year_turns_at_the_stores_midnight_and_the_read_copy_follows(
    ageing_stack: LocalStack, ageing_api: httpx.AsyncClient
) -> None:
    api = ageing_api
    store = (await create_store(api, timezone="Asia/Shanghai"))["id"]
    product = await create_product(api, days_per_unit=30)
    customer = (await create_customer(api, store_id=store))["id"]
    for at, qty in (
        (datetime(LAST_YEAR - 1, 6, 1, 4, tzinfo=UTC), 1),
        # 60 days of supply from 20 December: still in service after the year turns.
        (datetime(LAST_YEAR, 12, 20, 4, tzinfo=UTC), 2),
    ):
        await record_purchase(
            api, customer_id=customer, sku=product["sku"], qty=qty, purchased_at=at.isoformat()
        )

    async def second_line() -> bool:
        return await in_segment(api, store, customer, "active_second_line")

    await eventually(second_line, timeout=60)

    restart_scoring(ageing_stack, as_of=TURN)

    async def not_bought_this_year() -> bool:
        return await in_segment(api, store, customer, "in_service_not_bought")

    await eventually(not_bought_this_year, timeout=60)
    aged_on, aged_at, changes = await ageing_trail(ageing_stack, store)
    assert aged_on == date(NEW_YEAR, 1, 1)  # the store's day, not UTC's (still 31 December)
    assert changes == [(customer, "lifecycle", "active_second_line", "in_service_not_bought")]

    # Restarted on the same day (a deploy, a crash): the store is not aged twice.
    restart_scoring(ageing_stack, as_of=TURN)
    await asyncio.sleep(2)  # four checks
    assert await ageing_trail(ageing_stack, store) == (aged_on, aged_at, changes)
