"""A report's store, its time zone and its period: store-local days, both ends included.

Scoring knows a store by its customers: their rows carry the store's zone, as the registrations
said. A store of none is reported empty, in the country's zone.

A period is what the store's data can answer: it ends today at the latest (the store's today),
and an explicit start is not before the month of the store's first data (the day of its first
purchase fact or the day scoring registered its first file, ``analysis_store_since``, whichever
is earlier): managers ask for whole months, and a store whose first purchase was on 15 January
has data for January (the answer simply holds nothing before the 15th). The default twelve
months begin on the first data's day when the store is younger. A store with no data at all
answers any otherwise valid period with empty tables.
"""

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import asyncpg

from crm_libs.problems import InvalidField
from scoring_service.scores.consumed import DEFAULT_TIMEZONE

# A period longer than this is refused: ten years is longer than any store's history here, and
# a longer one would only make a slow query of empty months.
MAX_PERIOD_DAYS = 3660
# Before this no store kept files.
EARLIEST = date(1990, 1, 1)

# The first fact's day through ix_purchase_fact_store_day (one index probe).
_STORE_SQL = """
    SELECT (SELECT timezone FROM customer_score WHERE store_id = $1 LIMIT 1) AS timezone,
           LEAST((SELECT min(purchased_on) FROM purchase_fact WHERE store_id = $1),
                 (SELECT first_on FROM analysis_store_since WHERE store_id = $1)) AS first_day
"""


@dataclass(frozen=True, slots=True)
class Period:
    start: date
    end: date  # included


@dataclass(frozen=True, slots=True)
class StoreDays:
    timezone: str
    first_day: date | None  # the store's first data; None: it has none


async def store_timezone(db: asyncpg.Connection, store_id: str) -> str:
    zone = await db.fetchval(
        "SELECT timezone FROM customer_score WHERE store_id = $1 LIMIT 1", store_id
    )
    return zone or DEFAULT_TIMEZONE


async def store_days(db: asyncpg.Connection, store_id: str) -> StoreDays:
    """The store's time zone and the day its data begins."""
    row = await db.fetchrow(_STORE_SQL, store_id)
    return StoreDays(row["timezone"] or DEFAULT_TIMEZONE, row["first_day"])


def today_in(timezone: str, *, as_of: date | None) -> date:
    """The store's day now (the settings' ``as_of`` when scoring replays history)."""
    return as_of or datetime.now(ZoneInfo(timezone)).date()


def checked_period(
    *, start: date | None, end: date | None, today: date, first_day: date | None = None
) -> Period:
    """``start``..``end``; without ``end`` today, without ``start`` the twelve months to
    ``end`` (from the first day of the eleventh month before it, or ``first_day`` when that is
    later and not after ``end``). 422 naming the field when the period is reversed, ends after
    today, starts before any store kept files or before the month of the store's
    ``first_day``, or is longer than ten years."""
    if end is not None and end > today:
        raise InvalidField("to", f"{end} is after the store's today ({today}): no data yet")
    end = end or today
    if start is None:
        months = end.year * 12 + end.month - 1 - 11
        start = date(months // 12, months % 12 + 1, 1)
        if first_day is not None and start < first_day <= end:
            start = first_day
    elif first_day is not None and start < first_day.replace(day=1):
        raise InvalidField(
            "from",
            f"{start} is before the month of the store's first data: its data begins on "
            f"{first_day}, a period on {first_day.replace(day=1)} at the earliest",
        )
    if start > end:
        raise InvalidField("from", f"{start} is after to ({end})")
    if start < EARLIEST:
        raise InvalidField("from", f"is before {EARLIEST}: no store kept files then")
    if (end - start).days + 1 > MAX_PERIOD_DAYS:
        raise InvalidField("to", f"the period is longer than {MAX_PERIOD_DAYS} days")
    return Period(start, end)
