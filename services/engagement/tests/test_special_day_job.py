"""The daily special-day job on a real, migrated PostgreSQL: files arrive through the consumer's
handler, the job runs as the worker runs it (leader lock, each store at its local midnight) with
the clock given, and the tasks are read back from the table."""

import asyncio
import itertools
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_libs.events.envelope import EventEnvelope
from engagement_service.care.scheduled import LeadDays, plan_as_leader, wanted_tasks
from engagement_service.care.special_days import PersonalDates
from engagement_service.handlers import handle_events

SHANGHAI = ZoneInfo("Asia/Shanghai")
LEAD = LeadDays(personal=3, festival=7, season=3)
_stores = itertools.count(1)


def new_store() -> str:
    return f"care-{next(_stores)}"


def registered(
    store: str,
    customer: str,
    *,
    owner: str | None,
    status: str = "active",
    birthday: str | None = None,
    calendar: str = "solar",
    spouse: str | None = None,
) -> EventEnvelope:
    file: dict[str, Any] = {
        "timezone": "Asia/Shanghai",
        "status": status,
        "owner_staff_id": owner,
        "birthday": birthday,
        "birthday_calendar": calendar,
        "wedding_anniversary": None,
        "relations": [{"customer_id": spouse, "kind": "spouse"}] if spouse else [],
        "referrer_id": None,
        "consents": {"sms": {"granted": False, "at": None, "channel": None}},
        "version": 1,
    }
    return EventEnvelope(
        type="customer.registered", store_id=store, customer_id=customer, payload={"file": file}
    )


def bought(store: str, customer: str) -> EventEnvelope:
    return EventEnvelope(
        type="purchase.recorded",
        store_id=store,
        customer_id=customer,
        payload={
            "purchase_id": f"p-{customer}",
            "purchased_on": "2024-11-01",
            "staff_id": "till",
            "lines": [{"sku": "SKU-1", "qty": 1}],
        },
    )


async def consume(sessions: async_sessionmaker[AsyncSession], *events: EventEnvelope) -> None:
    async with sessions() as session, session.begin():
        await handle_events(session, list(events))


def half_past_midnight(day: date) -> datetime:
    """Shanghai's day has begun; UTC is still on the day before."""
    return datetime.combine(day, time(0, 30), SHANGHAI).astimezone(UTC)


async def run(sessions: async_sessionmaker[AsyncSession], day: date) -> dict[str, int] | None:
    return await plan_as_leader(
        sessions, now=half_past_midnight(day), lead=LEAD, default_timezone="Asia/Shanghai"
    )


async def special_tasks(sessions: async_sessionmaker[AsyncSession], store: str) -> list[tuple]:
    """(customer, occasion, occasion_on, due_on, method, assignee, status) of the store's
    special-day tasks, in a stable order."""
    async with sessions() as session:
        rows = await session.execute(
            text(
                """
                SELECT customer_id, occasion, occasion_on, due_on, method, assignee_staff_id,
                       status
                FROM task WHERE store_id = :s AND kind = 'special_day'
                ORDER BY occasion_on, customer_id, occasion
                """
            ),
            {"s": store},
        )
        return [tuple(r) for r in rows]


async def test_tasks_are_created_once_ahead_of_each_occasion_on_the_owners_list(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    store = new_store()
    await consume(
        sessions,
        # A prospect with a birthday: the birthday, no festival.
        registered(store, "prospect", owner="staff-a", birthday="1950-05-27"),
        # A customer who bought: the festivals, and a birthday further ahead.
        registered(store, "buyer", owner="staff-b", birthday="1948-05-29"),
        bought(store, "buyer"),
        # Archived: nothing, though it bought and has a birthday in the window.
        registered(store, "gone", owner="staff-a", status="archived", birthday="1950-05-27"),
        bought(store, "gone"),
    )
    day_one = [
        # 端午 2025 is 31 May, 7 days ahead: due today; the birthday 3 days ahead: due today.
        ("prospect", "birthday", date(2025, 5, 27), date(2025, 5, 24), "phone", "staff-a", "open"),
        (
            "buyer",
            "dragon_boat",
            date(2025, 5, 31),
            date(2025, 5, 24),
            "message",
            "staff-b",
            "open",
        ),
    ]
    planned = await run(sessions, date(2025, 5, 24))
    assert planned is not None and planned[store] == 2
    assert await special_tasks(sessions, store) == day_one

    # The same day again (a restart) and a second replica at once: nothing more.
    again = await asyncio.gather(run(sessions, date(2025, 5, 24)), run(sessions, date(2025, 5, 24)))
    assert [(r or {}).get(store, 0) for r in again] == [0, 0]
    assert await special_tasks(sessions, store) == day_one

    # A customer registered after the day's run, whose birthday is tomorrow: planned that day.
    await consume(sessions, registered(store, "newcomer", owner="staff-a", birthday="1961-05-25"))
    assert (await run(sessions, date(2025, 5, 24)) or {}).get(store) == 1
    day_one.insert(
        0,
        ("newcomer", "birthday", date(2025, 5, 25), date(2025, 5, 24), "phone", "staff-a", "open"),
    )
    assert await special_tasks(sessions, store) == day_one

    # The next day the same occasions are still ahead: they are not planned twice.
    assert (await run(sessions, date(2025, 5, 25)) or {}).get(store) == 0
    assert await special_tasks(sessions, store) == day_one

    # 29 May comes within 3 days on the 26th.
    assert (await run(sessions, date(2025, 5, 26)) or {}).get(store) == 1
    assert await special_tasks(sessions, store) == [
        *day_one[:2],
        ("buyer", "birthday", date(2025, 5, 29), date(2025, 5, 26), "phone", "staff-b", "open"),
        day_one[2],
    ]


async def test_lunar_birthdays_in_a_leap_month_year_and_the_12th_month_across_the_new_year(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    store = new_store()
    await consume(
        sessions,
        # 1960-07-03 is 六月初十; lunar 2025 has a leap 6th month: the birthday is 六月初十 =
        # 2025-07-04, never 闰六月初十 = 2025-08-03. Her husband's file names her as his spouse.
        registered(store, "wife", owner="staff-a", birthday="1960-07-03", calendar="lunar"),
        registered(store, "husband", owner="staff-b", spouse="wife"),
        # 1950-02-01 is 腊月十五 of lunar 1949: lunar 2024's is 2025-01-14, lunar 2025's is
        # 2026-02-02, in the next solar year.
        registered(store, "winter", owner="staff-a", birthday="1950-02-01", calendar="lunar"),
    )
    for day in (date(2025, 1, 11), date(2025, 7, 1), date(2025, 7, 31), date(2026, 1, 30)):
        assert await run(sessions, day) is not None
    assert await special_tasks(sessions, store) == [
        ("winter", "birthday", date(2025, 1, 14), date(2025, 1, 11), "phone", "staff-a", "open"),
        (
            "husband",
            "spouse_birthday",
            date(2025, 7, 4),
            date(2025, 7, 1),
            "phone",
            "staff-b",
            "open",
        ),
        ("wife", "birthday", date(2025, 7, 4), date(2025, 7, 1), "phone", "staff-a", "open"),
        ("winter", "birthday", date(2026, 2, 2), date(2026, 1, 30), "phone", "staff-a", "open"),
    ]


def test_files_sharing_their_dates_get_what_each_ones_dates_give() -> None:
    # A run looks each set of dates up once (store_files gives files that share their dates one
    # PersonalDates): every file still gets its own occasions, as when planned alone.
    lunar = PersonalDates(birthday=date(1951, 12, 1), birthday_calendar="lunar")
    solar = PersonalDates(birthday=date(1960, 2, 29), birthday_calendar="solar")
    couple = PersonalDates(
        birthday=date(1958, 3, 1),
        wedding_anniversary=date(1980, 2, 27),
        spouse_birthday=date(1957, 1, 20),
        spouse_birthday_calendar="lunar",
    )
    files = [
        ("c1", lunar, False),
        ("c2", solar, True),
        ("c3", lunar, True),
        ("c4", couple, False),
        ("c5", PersonalDates(birthday=date(1951, 12, 1), birthday_calendar="lunar"), False),
        ("c6", solar, False),
        ("c7", PersonalDates(), True),
        ("c8", couple, True),
    ]
    given = set()
    # Lunar birthdays on 11 December 2026 and 27 January 2027, the anniversary and the solar
    # 29 February (kept on the 28th) in late February, the Spring Festival on 6 February 2027
    # and 立春 two days before.
    for today in (date(2026, 12, 9), date(2027, 1, 25), date(2026, 2, 25), date(2027, 2, 1)):
        alone = [w for file in files for w in wanted_tasks([file], today=today, lead=LEAD)]
        assert wanted_tasks(files, today=today, lead=LEAD) == alone
        given |= {(w.customer_id, w.occurrence.occasion.value) for w in alone}
    assert given == {
        *((c, "birthday") for c in ("c1", "c2", "c3", "c5", "c6")),
        *((c, o) for c in ("c4", "c8") for o in ("spouse_birthday", "wedding_anniversary")),
        *((c, o) for c in ("c2", "c3", "c7", "c8") for o in ("spring_festival", "lichun")),
    }
