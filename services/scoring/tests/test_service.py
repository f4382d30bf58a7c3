"""Scoring's domain service against a real, migrated PostgreSQL database."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from scoring_service.scores import service
from scoring_service.scores.aggregates import PurchaseSeen


def sale(
    n: int, *, customer: str, store: str = "s1", total: str = "100.00", ago: int = 1
) -> PurchaseSeen:
    at = datetime.now(UTC) - timedelta(days=ago)
    return PurchaseSeen(
        purchase_id=f"{store}-{customer}-{n}",
        store_id=store,
        customer_id=customer,
        purchased_at=at,
        purchased_on=at.date(),
        timezone="Asia/Shanghai",
        total=Decimal(total),
        supply_days=30,
    )


async def test_tiers_within_a_store_and_inactive_outside_the_window(session: AsyncSession) -> None:
    purchases = [sale(i, customer=f"c{i}", total=f"{100 + i}.00") for i in range(20)]
    purchases.append(sale(99, customer="old", total="5000.00", ago=400))
    changes = await service.apply_purchases(session, purchases=purchases)
    tiers = dict(
        (await session.execute(text("SELECT customer_id, value_tier FROM customer_score"))).all()
    )
    assert tiers["c19"] == "vip"  # p = 0/20
    # With 20 spenders one above is already p = 0.05: no one is major.
    assert tiers["c18"] == "medium" and tiers["c16"] == "medium" and tiers["c15"] == "small"
    assert tiers["old"] == "inactive"  # bought, but not in the trailing 365 days
    assert len(changes) == 21
    # This path (a batch holding a merge takes it) stages each customer's tier change and,
    # apart, the supply run-out and expected purchase dates the purchase moved.
    staged = await session.execute(
        text("SELECT count(*), count(DISTINCT envelope->>'customer_id') FROM outbox_event")
    )
    assert tuple(staged.one()) == (42, 21)


async def test_same_purchase_twice_in_a_batch_counts_once(session: AsyncSession) -> None:
    twice = [sale(1, customer="dup"), sale(1, customer="dup")]
    await service.apply_purchases(session, purchases=twice)
    await service.apply_purchases(session, purchases=[sale(1, customer="dup")])
    count = await session.execute(
        text("SELECT purchase_count FROM customer_score WHERE customer_id = 'dup'")
    )
    assert count.scalar_one() == 1


async def test_historic_replay_as_of_a_date(session: AsyncSession) -> None:
    at = datetime(1997, 3, 1, tzinfo=UTC)
    old = PurchaseSeen("h1", "s9", "h", at, at.date(), "UTC", Decimal("10.00"), 30)
    await service.apply_purchases(session, purchases=[old], as_of=date(1997, 12, 31))
    tier = await session.execute(
        text("SELECT value_tier FROM customer_score WHERE customer_id='h'")
    )
    assert tier.scalar_one() == "vip"


async def test_prospects_stay_out_of_the_ranking(session: AsyncSession) -> None:
    await service.register_prospects(session, customers=[("p1", "s5", "UTC"), ("p2", "s5", "UTC")])
    await service.apply_purchases(session, purchases=[sale(1, customer="p1", store="s5")])
    # Registered again later (another topic, no ordering): changes nothing.
    assert await service.register_prospects(session, customers=[("p1", "s5", "UTC")]) == []
    tiers = dict(
        (
            await session.execute(
                text("SELECT customer_id, value_tier FROM customer_score WHERE store_id = 's5'")
            )
        ).all()
    )
    assert tiers == {"p1": "vip", "p2": "prospect"}


async def test_prospects_are_stored_as_given_whatever_their_text_holds(
    session: AsyncSession,
) -> None:
    """A batch's prospects go to the server as one text per column where that splits back
    exactly (service.py), as arrays where it would not: the rows are the same either way."""
    batches = [
        [("tx-a", "s-tx", "Asia/Shanghai"), ("tx-b", "s-tx", "UTC"), ("tx-c 1", "s-tx", "UTC")],
        [("tx-\x1fd", "s-tx", "UTC"), ("tx-e", "s-tx", "Asia/Shanghai")],  # the separator
        [("tx-f", "s-tx", "")],  # one empty text: no value at all to string_to_array
        [("tx-g", "s-tx", "UTC")],
    ]
    for batch in batches:
        await service.register_prospects(session, customers=batch)
    rows = await session.execute(
        text("SELECT customer_id, store_id, timezone FROM customer_score WHERE store_id = 's-tx'")
    )
    assert sorted(tuple(r) for r in rows) == sorted(p for batch in batches for p in batch)


async def test_purchases_age_out_of_the_window_without_new_purchases(database_url: str) -> None:
    from crm_libs.db import make_engine, make_sessionmaker
    from scoring_service.scores.scheduled import refresh_as_leader

    at = datetime(2020, 3, 1, tzinfo=UTC)
    old = PurchaseSeen("w1", "s-window", "w", at, at.date(), "UTC", Decimal("10.00"), 30)
    engine = make_engine(database_url, pool_size=2)
    sessions = make_sessionmaker(engine)
    try:
        async with sessions() as session, session.begin():
            await service.apply_purchases(session, purchases=[old], as_of=date(2020, 12, 31))
        moved = await refresh_as_leader(sessions, as_of=date(2021, 6, 1))
        assert moved is not None and moved >= 1
        async with sessions() as session:
            tier = await session.execute(
                text("SELECT value_tier, net_spend_365d FROM customer_score WHERE customer_id='w'")
            )
            assert tuple(tier.one()) == ("inactive", Decimal("0.00"))
        # Another replica holding the lock: this one stands aside.
        async with sessions() as other:
            await other.execute(text("SELECT pg_advisory_lock(72365001)"))
            assert await refresh_as_leader(sessions, as_of=date(2021, 6, 1)) is None
            await other.execute(text("SELECT pg_advisory_unlock(72365001)"))
    finally:
        async with sessions() as session, session.begin():
            await session.execute(text("DELETE FROM customer_score WHERE store_id = 's-window'"))
            await session.execute(text("DELETE FROM purchase_fact WHERE store_id = 's-window'"))
            await session.execute(
                text("DELETE FROM outbox_event WHERE envelope->>'store_id' = 's-window'")
            )
        await engine.dispose()
