"""Birthdays in the solar or the lunar calendar, and dates checked to lie in a sensible range.

Many elderly customers keep a lunar birthday (农历生日): ``birthday_calendar`` is ``solar`` or
``lunar``. A lunar date is written ``YYYY-MM-DD`` with the lunar month and day, and a leap month
(闰月) as ``YYYY-LMM-DD`` (``2023-L02-15`` is the 15th of the leap 2nd month of 2023); ``闰`` is
read in place of ``L``. Since a lunar month has 29 or 30 days and a year has at most one leap
month, a lunar date is checked against its year: the 30th of a 29-day month, or a leap month the
year does not have, is refused with the reason.

The lunar calendar comes from lunar-python (6tail), which computes new moons and solar terms
astronomically (寿星天文历) rather than reading a table, so it has no end year; lunar dates are
accepted for lunar years 1900-2100, whose months it gave are kept in crm_libs/lunar_table.py
(computing a year costs about 5 ms). Its month starts agree with the Hong Kong Observatory's
table (as packaged by lunardate) on every month of 1900-2099 but four whose new moon falls
within minutes of midnight (1933-06, 1954-11, 1978-08, 2057-09), each one day apart. The same
library has the solar terms and festivals the care reminders need.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from functools import cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crm_libs import lunar_table
from crm_libs.problems import InvalidField

BirthdayCalendar = Literal["solar", "lunar"]
BIRTHDAY_CALENDARS: tuple[BirthdayCalendar, ...] = ("solar", "lunar")

EARLIEST_DATE = date(1900, 1, 1)
FIRST_LUNAR_YEAR = 1900
LAST_LUNAR_YEAR = 2100

_LUNAR_TEXT = re.compile(r"^(\d{4})-(L|闰)?(\d{1,2})-(\d{1,2})$")


@dataclass(frozen=True, slots=True)
class LunarDate:
    """A date of the Chinese lunar calendar: lunar year, month 1-12, day 1-30, leap month."""

    year: int
    month: int
    day: int
    leap: bool = False

    def __str__(self) -> str:
        return f"{self.year:04d}-{'L' if self.leap else ''}{self.month:02d}-{self.day:02d}"


@dataclass(frozen=True, slots=True)
class _Month:
    month: int
    leap: bool
    days: int
    first_day: date


def lunar_date(
    year: int, month: int, day: int, leap: bool = False, *, field: str = "birthday"
) -> LunarDate:
    """A lunar date that exists, or ``InvalidField`` naming ``field`` and saying why not."""
    if not FIRST_LUNAR_YEAR <= year <= LAST_LUNAR_YEAR:
        raise InvalidField(
            field, f"lunar dates are known for the years {FIRST_LUNAR_YEAR}-{LAST_LUNAR_YEAR}"
        )
    if not 1 <= month <= 12:
        raise InvalidField(field, "a lunar month is 1 to 12")
    if not 1 <= day <= 30:
        raise InvalidField(field, "a lunar day is 1 to 30")
    found = _month(year, month, leap)
    if found is None:
        leap_month = leap_month_of(year)
        has = (
            f"its leap month is the {_ordinal(leap_month)}"
            if leap_month
            else "it has no leap month"
        )
        raise InvalidField(field, f"lunar {year} has no leap {_ordinal(month)} month ({has})")
    if day > found.days:
        which = f"the leap {_ordinal(month)}" if leap else f"the {_ordinal(month)}"
        raise InvalidField(
            field,
            f"{which} month of lunar {year} has {found.days} days: there is no {_ordinal(day)}",
        )
    return LunarDate(year, month, day, leap)


def parse_lunar_date(text: str, *, field: str = "birthday") -> LunarDate:
    """``YYYY-MM-DD`` or, in a leap month, ``YYYY-LMM-DD`` (or ``YYYY-闰MM-DD``), checked."""
    match = _LUNAR_TEXT.match(text.strip())
    if match is None:
        raise InvalidField(field, "a lunar date is YYYY-MM-DD, or YYYY-LMM-DD in a leap month")
    year, leap, month, day = match.groups()
    return lunar_date(int(year), int(month), int(day), bool(leap), field=field)


def leap_month_of(year: int) -> int:
    """The lunar year's leap month (its number: 2 for 闰二月), 0 when it has none."""
    return next((m.month for m in _months(year) if m.leap), 0)


def lunar_to_solar(lunar: LunarDate) -> date:
    """The solar date of an existing lunar date (see ``lunar_date`` to check it exists)."""
    found = _month(lunar.year, lunar.month, lunar.leap)
    if found is None or lunar.day > found.days:
        raise ValueError(f"lunar {lunar} does not exist")
    return found.first_day + timedelta(days=lunar.day - 1)


def solar_to_lunar(day: date) -> LunarDate:
    """The lunar date of a solar date."""
    year = day.year if day >= _months(day.year)[0].first_day else day.year - 1
    for found in reversed(_months(year)):
        if found.first_day <= day:
            return LunarDate(year, found.month, (day - found.first_day).days + 1, found.leap)
    raise AssertionError("a lunar year's first month starts on or before the day")  # unreachable


def lunar_birthday_in_year(birthday: LunarDate, lunar_year: int) -> date:
    """The solar date on which a lunar birthday falls in the given *lunar* year.

    Someone born in a leap month celebrates in the normal month of that number, every year,
    even in a year that has the same leap month again: the normal month exists every year and
    comes first, so the date never jumps a month from one year to the next. Someone born on the
    30th celebrates on the 29th in a year whose month has 29 days (the last day of the month).
    Lunar year Y's 11th and 12th months may fall in solar January/February of Y+1.
    """
    found = _month(lunar_year, birthday.month, False)
    if found is None:  # every lunar year has its twelve normal months
        raise AssertionError(f"lunar {lunar_year} has no month {birthday.month}")
    return found.first_day + timedelta(days=min(birthday.day, found.days) - 1)


def next_birthday_on(birthday: date | LunarDate, *, on_or_after: date) -> date:
    """The solar date of the next birthday on or after a day (the day itself counts).

    A lunar birthday follows ``lunar_birthday_in_year``. A solar birthday on 29 February is kept
    on 28 February in common years (the day before the one that does not exist, as the lunar
    30th becomes the 29th).
    """
    if isinstance(birthday, LunarDate):
        lunar_year = solar_to_lunar(on_or_after).year
        for year in (lunar_year - 1, lunar_year, lunar_year + 1):
            on = lunar_birthday_in_year(birthday, year)
            if on >= on_or_after:
                return on
        raise AssertionError("a lunar birthday recurs within two lunar years")  # unreachable
    for year in (on_or_after.year, on_or_after.year + 1):
        on = _solar_anniversary(birthday, year)
        if on >= on_or_after:
            return on
    raise AssertionError("a solar birthday recurs within a year")  # unreachable


def _solar_anniversary(birthday: date, year: int) -> date:
    try:
        return birthday.replace(year=year)
    except ValueError:  # 29 February in a common year
        return date(year, 2, 28)


# --- dates in range --------------------------------------------------------------------------


def today_in(timezone: str, *, now: datetime | None = None) -> date:
    """Today's date in a store's time zone (``now`` for tests; the clock otherwise)."""
    if now is None:
        # Kept per time zone until shortly before its next midnight: an import checks each
        # row's birthday against today.
        kept = _TODAY.get(timezone)
        if kept is not None and time.time() < kept[1]:
            return kept[0]
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {timezone!r}") from exc
    local = (now or datetime.now(UTC)).astimezone(zone)
    if now is None:
        _TODAY[timezone] = (local.date(), today_kept_until(local))
    return local.date()


# Per time zone, today and the clock's time (time.time()) until which it holds.
_TODAY: dict[str, tuple[date, float]] = {}


def today_kept_until(local: datetime) -> float:
    """When a day read at ``local`` (aware, in its zone) stops being kept: the zone's next
    midnight, and no later than a minute after ``local`` (a time-zone rule loaded anew, a clock
    set). The midnight is the instant the zone's rules give the next day's 00:00, offset changes
    included: where a change skips 00:00 (Santiago, Havana) the first reading of the day-to-be
    is the instant of the change, and where one repeats it, its first occurrence."""
    midnight = datetime.combine(local.date() + timedelta(days=1), dt_time(), tzinfo=local.tzinfo)
    return min(midnight.timestamp(), local.timestamp() + 60.0)


def check_date_in_range(
    value: date, *, timezone: str, field: str, now: datetime | None = None
) -> date:
    """A past date (birthday, anniversary): not after today in the store's time zone, not
    before 1900; else ``InvalidField`` naming ``field``."""
    if value < EARLIEST_DATE:
        raise InvalidField(field, f"lies before {EARLIEST_DATE.year}")
    today = today_in(timezone, now=now)
    if value > today:
        raise InvalidField(field, f"lies in the future (today is {today} in {timezone})")
    return value


def check_birthday(
    value: str | date | LunarDate,
    calendar: BirthdayCalendar,
    *,
    timezone: str,
    field: str = "birthday",
    now: datetime | None = None,
) -> date | LunarDate:
    """A birthday in its calendar, checked: a solar date, or a lunar date that exists; either
    way its solar date in range (``check_date_in_range``)."""
    if calendar == "lunar":
        if isinstance(value, date):
            raise InvalidField(field, "a lunar birthday is given as YYYY-MM-DD of the lunar year")
        lunar = value if isinstance(value, LunarDate) else parse_lunar_date(value, field=field)
        check_date_in_range(lunar_to_solar(lunar), timezone=timezone, field=field, now=now)
        return lunar
    if calendar != "solar":
        raise InvalidField("birthday_calendar", "is solar or lunar")
    if isinstance(value, LunarDate):
        raise InvalidField(field, "a lunar date given for a solar birthday")
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value)
        except ValueError as exc:
            raise InvalidField(field, "a date is YYYY-MM-DD") from exc
    return check_date_in_range(value, timezone=timezone, field=field, now=now)


# --- the lunar year's months, computed once per year ------------------------------------------


@cache
def _months(year: int) -> tuple[_Month, ...]:
    """Lunar year ``year``'s months in order (a leap month after its normal month)."""
    table = lunar_table.table_months(year)
    if table is None:
        return computed_months(year)
    return tuple(
        _Month(month=number, leap=leap, days=days, first_day=first)
        for number, leap, days, first in table
    )


def computed_months(year: int) -> tuple[_Month, ...]:
    """Lunar year ``year``'s months as lunar-python computes them (what the table holds)."""
    from lunar_python import LunarYear, Solar  # only for a year outside the table

    months = []
    for lunar_month in LunarYear(year).getMonthsInYear():
        if lunar_month.getYear() != year:
            continue
        first = Solar.fromJulianDay(lunar_month.getFirstJulianDay())
        number = lunar_month.getMonth()
        months.append(
            _Month(
                month=abs(number),
                leap=number < 0,
                days=lunar_month.getDayCount(),
                first_day=date(first.getYear(), first.getMonth(), first.getDay()),
            )
        )
    return tuple(months)


def _month(year: int, month: int, leap: bool) -> _Month | None:
    return _months_by_number(year).get((month, leap))


@cache
def _months_by_number(year: int) -> dict[tuple[int, bool], _Month]:
    """A lunar year's months by (number, leap): a lunar birthday asks for its month thrice."""
    return {(m.month, m.leap): m for m in _months(year)}


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
