import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from scoring_service.scores.aggregates import (
    Aggregate,
    PurchaseSeen,
    added_runs_out,
    extend_supply,
    fold_batch,
)
from scoring_service.scores.tiers import (
    BASE_TIER,
    PYRAMID,
    TIERS,
    bounds_for,
    rank_case_sql,
    threshold_place,
    tier_for,
)

# Dates relative to today, so the suite means the same thing whatever year it runs in.
BOUGHT_ON = date.today() - timedelta(days=90)


def purchase(on: date, days: int, total: str = "10.00") -> PurchaseSeen:
    return PurchaseSeen(
        purchase_id=f"p{on}",
        store_id="s",
        customer_id="c",
        purchased_at=datetime(on.year, on.month, on.day, tzinfo=UTC),
        purchased_on=on,
        timezone="Asia/Shanghai",
        total=Decimal(total),
        supply_days=days,
    )


def test_supply_carries_over_unused_stock() -> None:
    runs_out = BOUGHT_ON + timedelta(days=30)
    assert extend_supply(None, purchased_on=BOUGHT_ON, supply_days=30) == runs_out
    # Bought again while 20 days remain: counted from the current run-out date.
    again = BOUGHT_ON + timedelta(days=10)
    assert extend_supply(runs_out, purchased_on=again, supply_days=30) == runs_out + timedelta(
        days=30
    )
    # Ran out long ago: counted from the purchase.
    long_ago = BOUGHT_ON - timedelta(days=365)
    assert extend_supply(long_ago, purchased_on=BOUGHT_ON, supply_days=10) == BOUGHT_ON + timedelta(
        days=10
    )


def test_aggregate_fold_keeps_first_and_last() -> None:
    aggregate = Aggregate(customer_id="c", store_id="s", timezone="UTC")
    later = BOUGHT_ON + timedelta(days=31)
    aggregate.fold(purchase(later, 30))
    aggregate.fold(purchase(BOUGHT_ON, 30))  # a late-arriving earlier sale
    assert aggregate.purchase_count == 2
    assert aggregate.first_purchase_at is not None
    assert aggregate.first_purchase_at.date() == BOUGHT_ON
    assert aggregate.last_purchase_at is not None and aggregate.last_purchase_at.date() == later


def test_pyramid_percentages_are_defined_once() -> None:
    assert [t for t, _ in PYRAMID] == ["vip", "major", "medium"]
    case = rank_case_sql(greater="g", spenders="n", bounds="sb")
    for i, (tier, _) in enumerate(PYRAMID):
        assert f"'{tier}'" in case and f"sb.bound_{i + 1}" in case
    assert sorted(bounds_for(["s"])["s"]) == [Decimal("0.01"), Decimal("0.05"), Decimal("0.20")]
    counts = [tier_for(greater, 1000) for greater in range(1000)]
    assert [counts.count(t) for t in ("vip", "major", "medium", "small")] == [10, 40, 150, 800]


def test_a_bounds_threshold_place_gives_the_tiers_of_the_ranks() -> None:
    """A spend is in a bound's tier or above iff it is at least the spend at the bound's
    threshold place: the same tiers as counting who spends more, ties included."""
    rng = random.Random(11)
    bounds_tried = [bounds_for(["s"])["s"], (Decimal("0.1"), Decimal("0.5"), Decimal("1"))]
    bounds_tried.append((Decimal(0), Decimal("0.3"), Decimal("0.3")))
    for _ in range(400):
        spends = [
            Decimal(rng.choice([rng.randint(1, 30), rng.randint(1, 3000)]))
            for _ in range(rng.randint(1, 250))
        ]
        descending = sorted(spends, reverse=True)
        bounds = rng.choice(bounds_tried)
        places = [threshold_place(b, len(spends)) for b in bounds]
        thresholds = [None if p is None else descending[p - 1] for p in places]
        for spend in spends:
            greater = sum(1 for s in spends if s > spend)
            by_threshold = next(
                (
                    t
                    for t, th in zip(TIERS, thresholds, strict=True)
                    if th is not None and spend >= th
                ),
                BASE_TIER,
            )
            assert by_threshold == tier_for(greater, len(spends), bounds), (spends, bounds)


def test_a_batch_folded_from_nothing_adds_to_a_stored_run_out_like_folding_on() -> None:
    """What the database computes for a batch (aggregates.added_runs_out), against folding the
    batch's purchases onto the stored aggregate one by one."""
    rng = random.Random(3)
    for _ in range(300):
        days = sorted(rng.sample(range(400), rng.randint(2, 8)))
        history = [
            purchase(BOUGHT_ON + timedelta(days=d), rng.choice([0, 1, 7, 30, 90])) for d in days
        ]
        cut = rng.randint(0, len(history))
        stored = Aggregate(customer_id="c", store_id="s", timezone="UTC")
        for p in history[:cut]:
            stored.fold(p)
        batch = fold_batch(history[cut:]).get("c")
        whole = Aggregate(customer_id="c", store_id="s", timezone="UTC")
        whole.rebuild(history)
        if batch is None:
            assert whole.supply_runs_out_on == stored.supply_runs_out_on
        else:
            assert added_runs_out(stored.supply_runs_out_on, batch) == whole.supply_runs_out_on
            assert batch.supply_days == sum(p.supply_days for p in history[cut:])
