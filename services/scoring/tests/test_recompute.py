"""A store's recompute against a real, migrated PostgreSQL: it rebuilds what the stored facts
say, and purchases consumed while it runs (the consumer's batch handler, in another
transaction) are neither lost nor counted twice."""

import asyncio
import itertools
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_libs.db import make_engine, make_sessionmaker
from crm_libs.problems import NotFound
from scoring_service.scores import recompute
from scoring_service.scores.aggregates import PurchaseSeen
from scoring_service.scores.consumed import ConsumedEvent
from scoring_service.scores.handlers import make_batch_handler

AS_OF = date(2026, 3, 31)
_ids = itertools.count(1)
consume = make_batch_handler(as_of=AS_OF)


async def consumed(session: AsyncSession, purchases: list[PurchaseSeen]) -> None:
    """The purchases as the consumer applies a batch of their events."""
    await consume(session, [ConsumedEvent(f"ev-{p.purchase_id}", purchase=p) for p in purchases])


def bought(customer: str, store: str, days_ago: int, total: str = "80.00") -> PurchaseSeen:
    at = datetime(2026, 3, 31, 6, tzinfo=UTC) - timedelta(days=days_ago)
    return PurchaseSeen(
        purchase_id=f"rc-{next(_ids)}",
        store_id=store,
        customer_id=customer,
        purchased_at=at,
        purchased_on=at.date(),
        timezone="UTC",
        total=Decimal(total),
        supply_days=30,
    )


async def consistent(sessions: async_sessionmaker[AsyncSession], store: str) -> None:
    """Every score of the store counts exactly its stored purchases, and a recompute finds
    nothing to correct."""
    async with sessions() as session:
        counts = await session.execute(
            text(
                "SELECT cs.customer_id, cs.purchase_count, "
                "(SELECT count(*) FROM purchase_fact AS f WHERE f.customer_id = cs.customer_id) "
                "FROM customer_score AS cs WHERE cs.store_id = :s"
            ),
            {"s": store},
        )
        assert all(stored == facts for _, stored, facts in counts), store
    async with sessions() as session, session.begin():
        again = await recompute.recompute_store(session, store_id=store, as_of=AS_OF)
    assert (again.corrected, again.changed) == (0, 0)


async def test_a_recompute_rebuilds_damaged_aggregates_from_the_facts(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    store = "rc-damaged"
    async with sessions() as session, session.begin():
        await consumed(
            session,
            [bought(f"{store}-{i}", store, 10 * i, f"{50 + i}.00") for i in range(6)]
            + [bought(f"{store}-0", store, 3)],
        )
    async with sessions() as session, session.begin():
        right = (await session.execute(text("SELECT * FROM customer_score"))).all()
        # Damage: counts, run-outs, spend and tiers no longer what the facts say.
        await session.execute(
            text(
                "UPDATE customer_score SET purchase_count = 9, supply_runs_out_on = NULL, "
                "net_spend_365d = 1, value_tier = 'small', lifecycle = NULL WHERE store_id = :s"
            ),
            {"s": store},
        )
    async with sessions() as session, session.begin():
        done = await recompute.recompute_store(session, store_id=store, as_of=AS_OF)
    assert done.customers == 6 and done.corrected == 6 and done.changed >= 6
    async with sessions() as session:
        rebuilt = {
            r.customer_id: r
            for r in (await session.execute(text("SELECT * FROM customer_score"))).all()
        }
    for before in right:
        after = rebuilt[before.customer_id]
        for column in ("purchase_count", "supply_runs_out_on", "net_spend_365d", "value_tier"):
            assert getattr(after, column) == getattr(before, column), column
    assert all(r.lifecycle for r in rebuilt.values())
    await consistent(sessions, store)
    with pytest.raises(NotFound):
        async with sessions() as session, session.begin():
            await recompute.recompute_store(session, store_id="rc-nobody", as_of=AS_OF)


@pytest.mark.parametrize("first", ["purchase", "recompute"])
async def test_purchases_consumed_during_a_recompute_are_neither_lost_nor_doubled(
    sessions: async_sessionmaker[AsyncSession], first: str
) -> None:
    store = f"rc-busy-{first}"
    customers = [f"{store}-{i}" for i in range(4)]
    async with sessions() as session, session.begin():
        await consumed(session, [bought(c, store, 20) for c in customers])
    arriving = [bought(c, store, 1, "500.00") for c in customers]
    # Aggregates for the recompute to correct: the rows it writes are those the batch writes.
    async with sessions() as session, session.begin():
        await session.execute(
            text("UPDATE customer_score SET purchase_count = 0 WHERE store_id = :s"), {"s": store}
        )

    async with sessions() as one, sessions() as two:
        if first == "purchase":  # a batch holds the store when the recompute starts
            await consumed(two, arriving)
            later = asyncio.create_task(recompute.recompute_store(one, store_id=store, as_of=AS_OF))
            held, waiting = two, one
        else:  # the recompute holds the store when a batch arrives
            await recompute.recompute_store(one, store_id=store, as_of=AS_OF)
            later = asyncio.create_task(consumed(two, arriving))
            held, waiting = one, two
        await asyncio.sleep(0.5)
        assert not later.done()  # waiting for the store's lock
        await held.commit()
        await later
        await waiting.commit()
    await consistent(sessions, store)


def test_a_shell_beside_the_service_recomputes_stores_by_id(database_url: str) -> None:
    """``python -m scoring_service.recompute_cli``: for a store too big for the gateway's wait."""
    store = "rc-shell"

    async def damaged() -> None:
        engine = make_engine(database_url, pool_size=1)
        try:
            async with make_sessionmaker(engine)() as session, session.begin():
                await consumed(session, [bought(f"{store}-{i}", store, 5 + i) for i in range(3)])
                await session.execute(
                    text("UPDATE customer_score SET purchase_count = 7 WHERE store_id = :s"),
                    {"s": store},
                )
        finally:
            await engine.dispose()

    asyncio.run(damaged())
    env = {**os.environ, "CRM_DATABASE_URL": database_url, "CRM_AS_OF": AS_OF.isoformat()}
    command = [sys.executable, "-m", "scoring_service.recompute_cli", store, "rc-nowhere"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1  # the unknown store
    assert f"{store}: customers 3, corrected 3" in done.stdout
    assert "rc-nowhere" in done.stderr
