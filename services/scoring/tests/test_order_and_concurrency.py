"""Scoring with several group members: purchase-date order and one re-ranking at a time per store.

Real PostgreSQL; the concurrent cases use two sessions whose transactions really overlap.
"""

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_devstack.fixtures import eventually
from scoring_service.scores import service
from scoring_service.scores.aggregates import Aggregate, PurchaseSeen
from scoring_service.scores.tiers import INACTIVE, tier_for


def bought(
    purchase_id: str, *, customer: str, store: str, days_ago: int, total: str, supply_days: int = 30
) -> PurchaseSeen:
    at = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(
        days=days_ago
    )
    return PurchaseSeen(
        purchase_id=purchase_id,
        store_id=store,
        customer_id=customer,
        purchased_at=at,
        purchased_on=at.date(),
        timezone="UTC",
        total=Decimal(total),
        supply_days=supply_days,
    )


async def aggregate_of(session: AsyncSession, customer: str) -> tuple[object, ...]:
    row = await session.execute(
        text(
            "SELECT purchase_count, first_purchase_at, last_purchase_at, supply_runs_out_on,"
            " net_spend_365d, value_tier FROM customer_score WHERE customer_id = :c"
        ),
        {"c": customer},
    )
    return tuple(row.one())


def history(customer: str, store: str) -> list[PurchaseSeen]:
    """Three purchases in date order; supply carried over makes their order matter."""
    return [
        bought(f"{customer}-a", customer=customer, store=store, days_ago=90, total="50.00"),
        bought(f"{customer}-b", customer=customer, store=store, days_ago=75, total="70.00"),
        bought(f"{customer}-c", customer=customer, store=store, days_ago=20, total="30.00"),
    ]


async def test_a_back_dated_purchase_gives_the_same_aggregate_as_date_order(
    session: AsyncSession,
) -> None:
    in_order, late = history("ordered", "s-bd"), history("late", "s-bd")
    for p in in_order:
        await service.apply_purchases(session, purchases=[p])
    # The newest first, then the two older ones in one later batch, themselves reversed.
    await service.apply_purchases(session, purchases=[late[2]])
    await service.apply_purchases(session, purchases=[late[1], late[0]])
    # All three in one batch in reverse date order.
    late_in_batch = history("batch", "s-bd")
    await service.apply_purchases(session, purchases=late_in_batch[::-1])

    expected = await aggregate_of(session, "ordered")
    # 90 days ago +30 -> 60 ago; 75 ago carries over to 30 ago; 20 ago is after it: 10 days ahead.
    assert expected[3] == in_order[2].purchased_on + timedelta(days=30)
    assert await aggregate_of(session, "late") == expected
    assert await aggregate_of(session, "batch") == expected


async def test_a_back_dated_purchase_after_ones_that_ran_out(session: AsyncSession) -> None:
    """Only the later purchases carry the earlier one's stock; a run-out in the past stays past."""
    store = "s-bd2"
    newer = bought("n-1", customer="n", store=store, days_ago=10, total="10.00", supply_days=5)
    older = bought("n-0", customer="n", store=store, days_ago=200, total="10.00", supply_days=100)
    await service.apply_purchases(session, purchases=[newer])
    await service.apply_purchases(session, purchases=[older])
    count, first, last, runs_out, *_ = await aggregate_of(session, "n")
    assert (count, first, last) == (2, older.purchased_at, newer.purchased_at)
    assert runs_out == newer.purchased_on + timedelta(days=5)  # the older supply ran out before


def from_scratch(spends: dict[str, Decimal]) -> dict[str, str]:
    """DOMAIN §3 computed here directly from every customer's total spend."""
    positive = [s for s in spends.values() if s > 0]
    return {
        c: tier_for(sum(1 for o in positive if o > s), len(positive)) if s > 0 else INACTIVE
        for c, s in spends.items()
    }


async def tiers_of(sessions: async_sessionmaker[AsyncSession], store: str) -> dict[str, str]:
    async with sessions() as session:
        rows = await session.execute(
            text("SELECT customer_id, value_tier FROM customer_score WHERE store_id = :s"),
            {"s": store},
        )
        return {c: t for c, t in rows.all()}


async def waiting_for_a_lock(sessions: async_sessionmaker[AsyncSession]) -> bool:
    """Some backend of this database waits for a lock (the second transaction is queued)."""
    async with sessions() as session:
        waiting = await session.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
        return bool(waiting.scalar_one())


async def overlap(
    sessions: async_sessionmaker[AsyncSession], first: list[PurchaseSeen], second: object
) -> None:
    """Apply ``first`` and keep its transaction open while ``second`` runs in another one."""
    async with sessions() as one, sessions() as two:
        await one.begin()
        await service.apply_purchases(one, purchases=first)

        async def other() -> None:
            await two.begin()
            if isinstance(second, list):
                await service.apply_purchases(two, purchases=second)
            else:
                await service.refresh_windows(two, store_id=str(second))
            await two.commit()

        task = asyncio.create_task(other())
        try:
            # Commit once the other transaction is queued behind this one (or, without a lock
            # to wait for, has already finished: the tiers then show what it missed).
            async def queued_or_done() -> bool:
                return task.done() or await waiting_for_a_lock(sessions)

            await eventually(queued_or_done, timeout=10)
            await one.commit()
            await asyncio.wait_for(task, timeout=30)
        finally:
            task.cancel()


async def test_two_members_re_ranking_one_store_see_each_others_spend(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    store = f"s-{uuid.uuid4().hex[:8]}"
    first = [bought("x-1", customer=f"{store}-x", store=store, days_ago=3, total="500.00")]
    second = [bought("y-1", customer=f"{store}-y", store=store, days_ago=2, total="900.00")]
    await overlap(sessions, first, second)
    # Without the store lock the second ranks without the first's customer: both vip.
    assert await tiers_of(sessions, store) == from_scratch(
        {f"{store}-x": Decimal("500.00"), f"{store}-y": Decimal("900.00")}
    )


async def test_the_window_refresh_waits_for_a_purchase_and_keeps_its_spend(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    store = f"s-{uuid.uuid4().hex[:8]}"
    a, b = f"{store}-a", f"{store}-b"
    async with sessions() as session, session.begin():
        await service.apply_purchases(
            session,
            purchases=[
                bought(f"{a}-1", customer=a, store=store, days_ago=30, total="100.00"),
                bought(f"{b}-1", customer=b, store=store, days_ago=30, total="200.00"),
            ],
        )
    # a buys again while the refresh of the store starts: the refresh must not write back
    # a's spend as it was before that purchase committed.
    await overlap(
        sessions, [bought(f"{a}-2", customer=a, store=store, days_ago=1, total="300.00")], store
    )
    async with sessions() as session:
        spend = await session.execute(
            text("SELECT net_spend_365d FROM customer_score WHERE customer_id = :c"), {"c": a}
        )
        assert spend.scalar_one() == Decimal("400.00")
    assert await tiers_of(sessions, store) == from_scratch(
        {a: Decimal("400.00"), b: Decimal("200.00")}
    )


async def test_members_locking_overlapping_stores_never_deadlock(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Batches touching the same stores' customers in opposite orders, all at once, all commit."""
    stores = [f"s-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    members = range(6)
    spends = {f"{s}-c{n}": Decimal("100.00") for s in stores for n in members}
    async with sessions() as session, session.begin():
        await service.apply_purchases(
            session,
            purchases=[
                bought(f"{c}-0", customer=c, store=c.rsplit("-", 1)[0], days_ago=9, total="100.00")
                for c in spends
            ],
        )

    async def member(n: int) -> None:
        batch = []
        for i, store in enumerate(stores if n % 2 else stores[::-1]):
            customer, total = f"{store}-c{n}", Decimal(10 + 7 * n + i)
            spends[customer] += total
            batch.append(
                bought(
                    f"{customer}-1", customer=customer, store=store, days_ago=1, total=f"{total}"
                )
            )
        async with sessions() as session, session.begin():
            await service.apply_purchases(session, purchases=batch)

    await asyncio.wait_for(asyncio.gather(*(member(n) for n in members)), timeout=60)
    for store in stores:
        want = from_scratch({c: s for c, s in spends.items() if c.startswith(store)})
        assert await tiers_of(sessions, store) == want


async def test_batches_added_in_the_database_give_the_aggregates_of_one_fold_in_date_order(
    session: AsyncSession,
) -> None:
    """Random histories cut into random consecutive batches (each folded on its own and added to
    the stored aggregate in SQL), some batches back-dated (rebuilt from all facts): the stored
    aggregates equal folding every purchase once, in date order."""
    rng = random.Random(7)
    store = "s-random"
    histories: dict[str, list[PurchaseSeen]] = {}
    for c in range(12):
        customer = f"r{c}"
        days = sorted(rng.sample(range(1, 300), rng.randint(1, 7)), reverse=True)
        histories[customer] = [
            bought(
                f"{customer}-{n}",
                customer=customer,
                store=store,
                days_ago=d,
                total=f"{rng.randint(0, 90)}.00",
                supply_days=rng.choice([0, 5, 30, 90]),
            )
            for n, d in enumerate(days)
        ]
    batches: list[list[PurchaseSeen]] = []
    for purchases in histories.values():
        rest = list(purchases)
        if rng.random() < 0.3 and len(rest) > 2:  # a newer purchase first: the rest is late
            batches.append([rest.pop(rng.randrange(1, len(rest)))])
        while rest:
            cut = rng.randint(1, len(rest))
            batches.append(rest[:cut])
            rest = rest[cut:]
    # Interleave customers, keeping each customer's batches in the order cut.
    queues = [[b for b in batches if b[0].customer_id == c] for c in histories]
    while any(queues):
        mixed: list[PurchaseSeen] = []
        for queue in queues:
            if queue and rng.random() < 0.6:
                mixed.extend(queue.pop(0))
        rng.shuffle(mixed)
        if mixed:
            await service.apply_purchases(session, purchases=mixed)
    for customer, purchases in histories.items():
        expected = Aggregate(customer_id=customer, store_id=store, timezone="UTC")
        expected.rebuild(sorted(purchases, key=PurchaseSeen.date_order))
        count, first, last, runs_out, *_ = await aggregate_of(session, customer)
        assert (count, first, last, runs_out) == (
            expected.purchase_count,
            expected.first_purchase_at,
            expected.last_purchase_at,
            expected.supply_runs_out_on,
        ), customer
