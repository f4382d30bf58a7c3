from datetime import date, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from engagement_service.followups import service
from engagement_service.followups.phases import FOLLOW_UP_PHASES, schedule_phases


def test_five_phases_on_days_3_7_14_21_28() -> None:
    assert [p.day for p in FOLLOW_UP_PHASES] == [3, 7, 14, 21, 28]
    # Across a year end: this year's 30 December, whatever year the suite runs in.
    year = date.today().year
    due = [d for _, d in schedule_phases(date(year, 12, 30))]
    assert due[0] == date(year + 1, 1, 2) and due[-1] == date(year + 1, 1, 27)


BOUGHT_ON = date.today() - timedelta(days=5)


def bought(purchase_id: str, *skus: str, customer: str = "c1") -> service.PurchaseSeen:
    return service.PurchaseSeen(purchase_id, "s1", customer, BOUGHT_ON, "staff-1", skus)


async def test_a_plan_per_first_purchase_of_each_product(session: AsyncSession) -> None:
    plans = await service.start_plans(
        session,
        purchases=[bought("p1", "A", "B"), bought("p2", "A"), bought("p3", "A", customer="c2")],
    )
    assert sorted((p.customer_id, p.sku) for p in plans) == [("c1", "A"), ("c1", "B"), ("c2", "A")]
    # A repeat purchase later starts nothing.
    assert await service.start_plans(session, purchases=[bought("p4", "B")]) == []
    tasks = await session.execute(text("SELECT count(*), min(due_on), max(due_on) FROM task"))
    first_due, last_due = BOUGHT_ON + timedelta(days=3), BOUGHT_ON + timedelta(days=28)
    assert tuple(tasks.one()) == (15, first_due, last_due)
