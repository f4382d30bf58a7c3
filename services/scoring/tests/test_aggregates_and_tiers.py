from datetime import UTC, date, datetime
from decimal import Decimal

from scoring_service.scores.aggregates import Aggregate, PurchaseSeen, extend_supply
from scoring_service.scores.tiers import PYRAMID, tier_case_sql, tier_for


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
    assert extend_supply(None, purchased_on=date(2026, 1, 1), supply_days=30) == date(2026, 1, 31)
    # Bought again while 20 days remain: counted from the current run-out date.
    assert extend_supply(date(2026, 1, 31), purchased_on=date(2026, 1, 11), supply_days=30) == date(
        2026, 3, 2
    )
    # Ran out long ago: counted from the purchase.
    assert extend_supply(date(2025, 1, 1), purchased_on=date(2026, 1, 1), supply_days=10) == date(
        2026, 1, 11
    )


def test_aggregate_fold_keeps_first_and_last() -> None:
    aggregate = Aggregate(customer_id="c", store_id="s", timezone="UTC")
    aggregate.fold(purchase(date(2026, 2, 1), 30))
    aggregate.fold(purchase(date(2026, 1, 1), 30))  # a late-arriving earlier sale
    assert aggregate.purchase_count == 2
    assert aggregate.first_purchase_at is not None and aggregate.first_purchase_at.month == 1
    assert aggregate.last_purchase_at is not None and aggregate.last_purchase_at.month == 2


def test_pyramid_percentages_are_defined_once() -> None:
    assert [t for t, _ in PYRAMID] == ["vip", "major", "medium"]
    case, params = tier_case_sql()
    for tier, _ in PYRAMID:
        assert f"'{tier}'" in case
    assert sorted(params.values()) == [Decimal("0.01"), Decimal("0.05"), Decimal("0.20")]
    counts = [tier_for(greater, 1000) for greater in range(1000)]
    assert [counts.count(t) for t in ("vip", "major", "medium", "small")] == [10, 40, 150, 800]
