"""The scores' read copy on the customer file (customer_service.score_copy): only a newer score
version replaces it, on a real, migrated database; each test's work is rolled back."""

import asyncio
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_devstack.fixtures import session_on
from crm_libs.db import asyncpg_dsn
from crm_libs.events.envelope import EventEnvelope
from crm_libs.ids import new_id
from customer_service.customers.models import Customer
from customer_service.handlers import handle_events
from customer_service.models import import_all_models
from customer_service.stores.models import Store

import_all_models()  # the file's foreign keys name the roster's and other tables


async def _customers(session: AsyncSession, count: int) -> list[Customer]:
    store = Store(code=new_id(), name="Health store", timezone="Asia/Shanghai")
    session.add(store)
    await session.flush()
    customers = [Customer(store_id=store.id, name="曾国藩") for _ in range(count)]
    session.add_all(customers)
    await session.flush()
    return customers


def _score(customer: Customer, version: int, tier: str, **more: Any) -> EventEnvelope:
    return EventEnvelope(
        type="score.changed",
        store_id=customer.store_id,
        customer_id=customer.id,
        payload={"value_tier": tier, "previous_tier": None, "version": version, **more},
    )


async def _copy(session: AsyncSession, customer_id: str) -> tuple[Any, ...]:
    row = (
        await session.execute(
            text(
                "SELECT value_tier, lifecycle, ladder_level, score_version, version"
                " FROM customer WHERE id = :id"
            ),
            {"id": customer_id},
        )
    ).one()
    return tuple(row)


async def test_a_file_without_a_score_is_a_prospect(session: AsyncSession) -> None:
    (customer,) = await _customers(session, 1)
    assert await _copy(session, customer.id) == ("prospect", None, None, None, 1)


async def test_only_a_newer_version_replaces_the_copy(session: AsyncSession) -> None:
    (customer,) = await _customers(session, 1)
    await handle_events(
        session, [_score(customer, 2, "vip", lifecycle="new_this_year", ladder_level="E")]
    )
    assert await _copy(session, customer.id) == ("vip", "new_this_year", "E", 2, 1)
    # Late: an older version and a replay of the same one change nothing.
    await handle_events(session, [_score(customer, 1, "small", lifecycle="lost")])
    await handle_events(session, [_score(customer, 2, "medium")])
    assert await _copy(session, customer.id) == ("vip", "new_this_year", "E", 2, 1)
    # Newer, without the later issue's fields: the tier moves, lifecycle and ladder stay.
    await handle_events(session, [_score(customer, 3, "major")])
    assert await _copy(session, customer.id) == ("major", "new_this_year", "E", 3, 1)
    # Newer with a null lifecycle: cleared.
    await handle_events(session, [_score(customer, 4, "major", lifecycle=None)])
    assert await _copy(session, customer.id) == ("major", None, "E", 4, 1)


async def test_a_files_first_score_that_changes_nothing_it_shows_is_not_written(
    session: AsyncSession,
) -> None:
    """Every registration's first score is a prospect, version 1, which a new file shows
    already: writing it would be a second row version of every file an import opens."""
    registered, rescored = await _customers(session, 2)

    async def row_version(customer: Customer) -> Any:
        found = await session.execute(
            text("SELECT ctid FROM customer WHERE id = :id"), {"id": customer.id}
        )
        return found.scalar_one()

    before = await row_version(registered)
    await handle_events(session, [_score(registered, 1, "prospect"), _score(rescored, 1, "small")])
    assert await row_version(registered) == before  # not even locked anew
    assert await _copy(session, registered.id) == ("prospect", None, None, None, 1)
    assert await _copy(session, rescored.id) == ("small", None, None, 1, 1)
    # The next score is newer than none; the first one again (a replay) is older than it.
    await handle_events(session, [_score(registered, 2, "small", lifecycle="new_this_year")])
    await handle_events(session, [_score(registered, 1, "prospect")])
    assert await _copy(session, registered.id) == ("small", "new_this_year", None, 2, 1)


async def test_a_batch_applies_each_customers_newest_score_whatever_its_order(
    session: AsyncSession,
) -> None:
    first, second = await _customers(session, 2)
    await handle_events(
        session,
        [
            _score(first, 7, "medium", lifecycle="active_core"),
            _score(second, 1, "small"),
            _score(first, 5, "vip", lifecycle="lost"),
            _score(second, 2, "inactive", ladder_level=0),
            # Another service's event on a topic the service reads is not its business.
            EventEnvelope(type="event.attended", store_id=first.store_id, customer_id=first.id),
        ],
    )
    assert await _copy(session, first.id) == ("medium", "active_core", None, 7, 1)
    assert await _copy(session, second.id) == ("inactive", None, "0", 2, 1)


async def test_a_score_without_a_tier_or_version_is_refused(session: AsyncSession) -> None:
    (customer,) = await _customers(session, 1)
    bad = _score(customer, 1, "vip")
    for payload in ({"version": 1}, {"value_tier": "vip"}, {"value_tier": "vip", "version": "1"}):
        with pytest.raises(ValueError, match="score.changed"):
            await handle_events(session, [bad.model_copy(update={"payload": payload})])


async def test_the_copy_locks_its_files_in_id_order_so_a_merge_never_deadlocks_with_it(
    database_url: str,
) -> None:
    """A merge locks its two files in id order (customers/merge.py); the copy must take the
    batch's files in the same order, or a batch naming them the other way round deadlocks with
    it: the copy holding the higher id and waiting for the lower, the merge the reverse."""
    dsn = asyncpg_dsn(database_url)
    # Sorted: two ids made in the same millisecond differ only in their random bits.
    low, high = sorted((new_id(), new_id()))
    setup = await asyncpg.connect(dsn)
    merge = await asyncpg.connect(dsn)
    try:
        store = new_id()
        await setup.execute(
            "INSERT INTO store (id, code, name, timezone) VALUES ($1, $2, 'S', 'Asia/Shanghai')",
            store,
            store,
        )
        for customer_id in (high, low):  # the higher first: a scan meets it first too
            await setup.execute(
                "INSERT INTO customer (id, store_id, name) VALUES ($1, $2, '曾')",
                customer_id,
                store,
            )
        batch = [
            EventEnvelope(
                type="score.changed",
                store_id=store,
                customer_id=customer_id,
                payload={"value_tier": "vip", "previous_tier": None, "version": 1},
            )
            for customer_id in (high, low)
        ]
        merging = merge.transaction()
        await merging.start()
        await merge.execute("SELECT 1 FROM customer WHERE id = $1 FOR UPDATE", low)

        async def copy() -> None:
            async with session_on(database_url) as session:
                await handle_events(session, batch)
                await session.commit()

        copying = asyncio.create_task(copy())
        await asyncio.sleep(0.5)  # the copy reaches the lower id and waits for the merge
        # The merge's second lock: with the copy holding the higher id this is a deadlock, and
        # PostgreSQL aborts one of the two after deadlock_timeout.
        await asyncio.wait_for(
            merge.execute("SELECT 1 FROM customer WHERE id = $1 FOR UPDATE", high), timeout=30
        )
        await merging.commit()
        await asyncio.wait_for(copying, timeout=30)
        tiers = await setup.fetch(
            "SELECT value_tier FROM customer WHERE id = ANY($1::text[])", [low, high]
        )
        assert [r["value_tier"] for r in tiers] == ["vip", "vip"]
    finally:
        await merge.close()
        await setup.close()
