"""A report's store, its time zone and its period: store-local days, both ends included.

Scoring knows a store by its customers: their rows carry the store's zone, as the registrations
said. A store of none is reported empty, in the country's zone.
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


@dataclass(frozen=True, slots=True)
class Period:
    start: date
    end: date  # included


async def store_timezone(db: asyncpg.Connection, store_id: str) -> str:
    zone = await db.fetchval(
        "SELECT timezone FROM customer_score WHERE store_id = $1 LIMIT 1", store_id
    )
    return zone or DEFAULT_TIMEZONE


def today_in(timezone: str, *, as_of: date | None) -> date:
    """The store's day now (the settings' ``as_of`` when scoring replays history)."""
    return as_of or datetime.now(ZoneInfo(timezone)).date()


def checked_period(*, start: date | None, end: date | None, today: date) -> Period:
    """``start``..``end``; without ``end`` today, without ``start`` the twelve months to
    ``end`` (from the first day of the eleventh month before it). 422 naming the field when the
    period is reversed, starts before any store kept files or is longer than ten years."""
    end = end or today
    if start is None:
        months = end.year * 12 + end.month - 1 - 11
        start = date(months // 12, months % 12 + 1, 1)
    if start > end:
        raise InvalidField("from", f"{start} is after to ({end})")
    if start < EARLIEST:
        raise InvalidField("from", f"is before {EARLIEST}: no store kept files then")
    if (end - start).days + 1 > MAX_PERIOD_DAYS:
        raise InvalidField("to", f"the period is longer than {MAX_PERIOD_DAYS} days")
    return Period(start, end)
