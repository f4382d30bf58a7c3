"""DOMAIN.md §9's pool rules at their exact edges, and the calendar month they are counted in."""

from datetime import date
from decimal import Decimal

import pytest

from customer_service.ownership.rules import (
    RULE_APPROVAL_NEEDED,
    RULE_COMPLETION_BELOW_HALF,
    RULE_COMPLETION_UNKNOWN,
    RULE_WORKED_A_MONTH,
    add_months,
    counts_as_change_of_hands,
    pool_refusal,
)

TODAY = date(2027, 3, 31)
LONG_AGO = date(2026, 1, 1)


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2027, 3, 31), -1, date(2027, 2, 28)),
        (date(2028, 3, 31), -1, date(2028, 2, 29)),
        (date(2027, 1, 15), -1, date(2026, 12, 15)),
        (date(2027, 8, 31), -6, date(2027, 2, 28)),
        (date(2026, 12, 1), 1, date(2027, 1, 1)),
    ],
)
def test_months_are_calendar_months(day: date, months: int, expected: date) -> None:
    assert add_months(day, months) == expected


@pytest.mark.parametrize(
    ("rate", "approval", "rule"),
    [
        ("0.8001", False, None),
        ("1", False, None),
        ("0.8", False, RULE_APPROVAL_NEEDED),
        ("0.8", True, None),
        ("0.5", False, RULE_APPROVAL_NEEDED),
        ("0.5", True, None),
        ("0.4999", True, RULE_COMPLETION_BELOW_HALF),
        ("0", True, RULE_COMPLETION_BELOW_HALF),
        (None, True, RULE_COMPLETION_UNKNOWN),
    ],
)
def test_completion_last_month_at_80_and_50_percent(
    rate: str | None, approval: bool, rule: str | None
) -> None:
    refusal = pool_refusal(
        started_on=LONG_AGO,
        today=TODAY,
        rate=Decimal(rate) if rate is not None else None,
        manager_approval=approval,
    )
    assert (refusal.rule if refusal else None) == rule
    if refusal:
        assert refusal.status == 409 and refusal.detail.startswith(rule or "")


@pytest.mark.parametrize(
    ("started_on", "refused"),
    [
        (date(2027, 3, 31), True),  # 30 April is the month's end, not more than a month
        (date(2027, 3, 30), True),  # a month ago exactly
        (date(2027, 3, 29), False),  # a month and a day
    ],
)
def test_worked_there_more_than_a_month_at_month_ends(started_on: date, refused: bool) -> None:
    refusal = pool_refusal(
        started_on=started_on, today=date(2027, 4, 30), rate=Decimal("0.95"), manager_approval=False
    )
    assert (refusal is not None and refusal.rule == RULE_WORKED_A_MONTH) is refused


def test_changes_of_hands_are_files_reaching_someone_after_having_had_an_owner() -> None:
    assert not counts_as_change_of_hands(from_staff_id=None, to_staff_id="a", in_pool=False)
    assert counts_as_change_of_hands(from_staff_id="a", to_staff_id="b", in_pool=False)
    assert counts_as_change_of_hands(from_staff_id=None, to_staff_id="b", in_pool=True)
    assert not counts_as_change_of_hands(from_staff_id="a", to_staff_id=None, in_pool=False)
