"""Special-day care end to end, on a stack of its own whose engagement looks for stores past
their local midnight every half second and puts birthdays on the list 40 days ahead
(``CRM_SPECIAL_DAY_LEAD_DAYS_PERSONAL``): customers registered through the gateway, one with a
solar birthday and one with a lunar birthday, show up in ``GET /tasks`` as ``special_day``
tasks naming the occasion and the solar day it falls on, on their owner's list. The dates are
the store's (Asia/Shanghai) and relative to today; the lunar date is the calendar library's.
"""

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from lunar_python import LunarMonth, Solar

from crm_devstack.fixtures import eventually, throwaway_stack
from crm_devstack.stack import LocalStack
from tests.builders import create_customer, create_staff, create_store

LEAD_DAYS = 40


@pytest.fixture(scope="module")
def care_stack() -> Iterator[LocalStack]:
    env = {
        "CRM_RATE_LIMIT": "1000000/minute",
        "CRM_SPECIAL_DAY_CHECK_SECONDS": "0.5",
        "CRM_SPECIAL_DAY_LEAD_DAYS_PERSONAL": str(LEAD_DAYS),
    }
    with throwaway_stack(env) as local:
        yield local


@pytest.fixture
async def care_api(care_stack: LocalStack) -> AsyncIterator[httpx.AsyncClient]:
    base = care_stack.url("gateway") + "/api/v1"
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        token = await client.post(
            "/auth/token", json={"username": "admin", "password": care_stack.admin_password}
        )
        token.raise_for_status()
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        yield client


def lunar_birthday_falling_on_or_after(day: date) -> tuple[str, date]:
    """A lunar birthday (as the API takes it: the lunar date of birth) whose celebration is the
    first day from ``day`` in a normal lunar month, with the solar day it falls on."""
    while True:
        lunar = Solar.fromYmd(day.year, day.month, day.day).getLunar()
        if lunar.getMonth() > 0:
            break
        day += timedelta(days=1)
    month, lunar_day = lunar.getMonth(), lunar.getDay()
    # A birth year whose month has that day (a 30th is kept only where it exists).
    born = next(
        y for y in range(1950, 1970) if LunarMonth.fromYm(y, month).getDayCount() >= lunar_day
    )
    return f"{born}-{month:02d}-{lunar_day:02d}", day


async def test_birthdays_show_on_the_owners_list_with_their_occasion(
    care_api: httpx.AsyncClient,
) -> None:
    api = care_api
    store = (await create_store(api, timezone="Asia/Shanghai"))["id"]
    staff = (await create_staff(api, store_id=store))["id"]
    today = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).date()
    solar_on = today + timedelta(days=2)
    # 1956 is a leap year: any day of the year exists in it.
    solar = await create_customer(
        api,
        store_id=store,
        owner_staff_id=staff,
        birthday=solar_on.replace(year=1956).isoformat(),
        birthday_calendar="solar",
    )
    lunar_text, lunar_on = lunar_birthday_falling_on_or_after(today + timedelta(days=5))
    lunar = await create_customer(
        api,
        store_id=store,
        owner_staff_id=staff,
        birthday=lunar_text,
        birthday_calendar="lunar",
    )

    async def listed() -> list[dict] | None:
        found = await api.get("/tasks", params={"staff_id": staff})
        assert found.status_code == 200, found.text
        items = [t for t in found.json()["items"] if t["kind"] == "special_day"]
        return items if len(items) == 2 else None

    tasks = await eventually(listed, timeout=60)
    shown = {
        t["customer_id"]: (t["occasion"], t["occasion_on"], t["method"], t["status"]) for t in tasks
    }
    assert shown == {
        solar["id"]: ("birthday", solar_on.isoformat(), "phone", "open"),
        lunar["id"]: ("birthday", lunar_on.isoformat(), "phone", "open"),
    }
    # Both are within the lead time: due today, the store's today.
    assert {t["due_on"] for t in tasks} == {today.isoformat()}
    assert {t["assignee_staff_id"] for t in tasks} == {staff}
