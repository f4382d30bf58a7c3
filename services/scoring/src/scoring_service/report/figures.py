"""The month's figures behind the report's charts, each gathered on its own so one that cannot
be had leaves the others standing.

- the pyramid and the lifecycle: scoring's classification of the store's customers today (the
  distribution; scoring keeps the present classification, not each month's);
- consumption by month: the twelve months to the report's month (scoring's analysis);
- consumption by product: the report's month (scoring's analysis);
- source conversion: the files opened in the month, per channel (the customer service's);
- staff completion: each staff member's follow-up tasks due in the month (engagement's).
"""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import asyncpg
from fastapi import Request

from crm_libs.problems import InvalidField
from scoring_service.analysis import consumption
from scoring_service.analysis.periods import EARLIEST, Period
from scoring_service.report import peers
from scoring_service.scores import segments


@dataclass(frozen=True, slots=True)
class Month:
    first: date
    last: date  # the month's last day, or today in the current month
    # The store's first data day when the month holds it, else ``first``: where a peer that
    # refuses a period from before the store's data is asked to begin (the source table).
    since: date | None = None

    @property
    def name(self) -> str:
        return self.first.strftime("%Y-%m")


def checked_month(month: str | None, *, today: date, first_day: date | None = None) -> Month:
    """``YYYY-MM``, this month when absent; 422 naming ``month`` when it is not a month, is
    after this one, before any store kept files or ends before the store's first data
    (``first_day``, analysis/periods.py)."""
    if month is None:
        first = today.replace(day=1)
    else:
        try:
            first = date.fromisoformat(f"{month}-01")
        except ValueError:
            raise InvalidField("month", "must be a month as YYYY-MM") from None
        if len(month) != 7:
            raise InvalidField("month", "must be a month as YYYY-MM")
    if first > today:
        raise InvalidField("month", f"{month} has not begun (this month is {today:%Y-%m})")
    if first < EARLIEST:
        raise InvalidField("month", f"is before {EARLIEST:%Y-%m}: no store kept files then")
    following = (first + timedelta(days=31)).replace(day=1)
    if month is not None and first_day is not None and following <= first_day:
        raise InvalidField(
            "month", f"{month} is before the store's first data: its data begins on {first_day}"
        )
    last = min(following - timedelta(days=1), today)
    since = first_day if first_day is not None and first < first_day <= last else first
    return Month(first, last, since)


def twelve_months_to(month: Month) -> Period:
    """From the first day of the eleventh month before ``month`` to its last day."""
    months = month.first.year * 12 + month.first.month - 1 - 11
    return Period(date(months // 12, months % 12 + 1, 1), month.last)


async def distribution(db: asyncpg.Connection, *, store_id: str) -> segments.Distribution:
    return await segments.store_counts(db, store_id=store_id)


async def consumption_by_month(
    db: asyncpg.Connection, *, store_id: str, month: Month
) -> list[consumption.Group]:
    """Every one of the twelve months, a month without purchases at zero."""
    period = twelve_months_to(month)
    found = {
        g.key: g
        for g in await consumption.consumption(db, store_id=store_id, by="month", period=period)
    }
    groups = []
    day = period.start
    while day <= period.end:
        key = day.strftime("%Y-%m")
        groups.append(found.get(key) or consumption.Group(key, 0, 0, Decimal(0), 0.0))
        day = (day + timedelta(days=31)).replace(day=1)
    return groups


async def consumption_by_product(
    db: asyncpg.Connection, *, store_id: str, month: Month
) -> list[consumption.Group]:
    """The month's products, the largest revenue first."""
    groups = await consumption.consumption(
        db, store_id=store_id, by="product", period=Period(month.first, month.last)
    )
    return sorted(groups, key=lambda g: g.revenue, reverse=True)


async def sources(request: Request, *, store_id: str, month: Month) -> list[dict[str, object]]:
    return await peers.source_conversion(
        request, store_id=store_id, start=month.since or month.first, end=month.last
    )


async def staff_completion(
    request: Request, *, store_id: str, month: Month
) -> list[tuple[str, int, float]]:
    """(name, tasks due, completion rate) of each staff member with a task due in the month,
    the highest rate first; named from the roster where it answers, by id otherwise."""
    stats = await peers.staff_completion(
        request, store_id=store_id, start=month.first, end=month.last
    )
    due = [s for s in stats if s.get("tasks_due") and s.get("completion_rate") is not None]
    names = await peers.staff_names(request, store_id=store_id) if due else {}
    found = [
        (
            names.get(s["staff_id"]) or s["staff_id"],
            int(s["tasks_due"]),
            float(s["completion_rate"]),
        )
        for s in due
    ]
    return sorted(found, key=lambda f: (-f[2], f[0]))
