"""The special days of special care (DOMAIN §4 特殊维护) and the solar dates they fall on.

Pure functions over a date range (both ends included): a file's birthday, the spouse's
birthday and the wedding anniversary, and the days every customer shares — the festivals
春节, 端午, 中秋, 重阳 and the solar terms 立春, 立夏, 立秋, 立冬. Lunar dates and solar terms come
from lunar-python (6tail), which computes new moons and solar terms astronomically rather than
reading a table; the customer service uses the same library for the birthdays it validates.

Each occurrence carries the year it belongs to in its own calendar: the solar year for a solar
birthday, an anniversary or a solar term, the lunar year for a lunar birthday or a festival.
That year, not the solar year of the date, is what makes it one occasion: lunar year Y's
winter-month birthday may fall in December of Y or in January of Y+1, so one solar year can
hold two of them and the next none.

The conventions (the customer service's ``calendars.py`` states the same for lunar birthdays):

- A solar birthday or anniversary on 29 February is kept on 28 February in common years (the
  last day of that February, as a lunar 30th becomes the 29th).
- A lunar birthday is the birth date's lunar month and day, each lunar year. Someone born in a
  leap month (闰月) celebrates in the normal month of that number every year, even in a year that
  repeats the leap month: the normal month exists every year and comes first. Someone born on
  the 30th celebrates on the 29th in a year whose month has 29 days.
- A 12th-month (腊月) birthday of lunar year Y falls after that year's solar new year as a rule
  (January or February of Y+1), but 腊月 can begin in late December: it is whatever day lunar Y's
  12th month gives, never "the same solar year".
- The festivals are lunar dates of a normal month: a leap 5th month's 5th is not 端午.
- Nothing falls on or before its origin: no birthday in the year of birth, no anniversary in
  the year of the wedding.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from functools import cache

from lunar_python import Lunar, LunarYear, Solar

from crm_libs import lunar_table


class Occasion(StrEnum):
    """What a ``special_day`` task is for (API.md's ``occasion``)."""

    BIRTHDAY = "birthday"
    SPOUSE_BIRTHDAY = "spouse_birthday"
    WEDDING_ANNIVERSARY = "wedding_anniversary"
    SPRING_FESTIVAL = "spring_festival"  # 春节
    DRAGON_BOAT = "dragon_boat"  # 端午
    MID_AUTUMN = "mid_autumn"  # 中秋
    DOUBLE_NINTH = "double_ninth"  # 重阳, the seniors' festival
    LICHUN = "lichun"  # 立春
    LIXIA = "lixia"  # 立夏
    LIQIU = "liqiu"  # 立秋
    LIDONG = "lidong"  # 立冬


# Each festival's lunar month and day (their definition, not a table of dates).
FESTIVALS: dict[Occasion, tuple[int, int]] = {
    Occasion.SPRING_FESTIVAL: (1, 1),
    Occasion.DRAGON_BOAT: (5, 5),
    Occasion.MID_AUTUMN: (8, 15),
    Occasion.DOUBLE_NINTH: (9, 9),
}
# The season changes, by the library's names of the solar terms (节气).
SOLAR_TERMS: dict[str, Occasion] = {
    "立春": Occasion.LICHUN,
    "立夏": Occasion.LIXIA,
    "立秋": Occasion.LIQIU,
    "立冬": Occasion.LIDONG,
}
PERSONAL = frozenset({Occasion.BIRTHDAY, Occasion.SPOUSE_BIRTHDAY, Occasion.WEDDING_ANNIVERSARY})


@dataclass(frozen=True, slots=True, order=True)
class Occurrence:
    """An occasion on its solar date; ``year`` is its year in its own calendar."""

    on: date
    occasion: Occasion
    year: int


@dataclass(frozen=True, slots=True)
class PersonalDates:
    """A file's own dates, as the read copy holds them: ``birthday`` is the solar date of birth
    whatever the calendar; ``*_calendar`` is ``solar`` or ``lunar``."""

    birthday: date | None = None
    birthday_calendar: str | None = None
    wedding_anniversary: date | None = None
    spouse_birthday: date | None = None
    spouse_birthday_calendar: str | None = None


def personal_occasions(dates: PersonalDates, *, start: date, end: date) -> list[Occurrence]:
    """The file's birthday, spouse's birthday and wedding anniversary between two days."""
    found = [
        *_birthdays(Occasion.BIRTHDAY, dates.birthday, dates.birthday_calendar, start, end),
        *_birthdays(
            Occasion.SPOUSE_BIRTHDAY,
            dates.spouse_birthday,
            dates.spouse_birthday_calendar,
            start,
            end,
        ),
    ]
    if dates.wedding_anniversary is not None:
        found += [
            Occurrence(on, Occasion.WEDDING_ANNIVERSARY, year)
            for on, year in solar_anniversaries(dates.wedding_anniversary, start=start, end=end)
        ]
    return sorted(found)


def shared_occasions(*, start: date, end: date) -> list[Occurrence]:
    """The festivals and season changes between two days: the same for every customer."""
    found = []
    for day in _days(start, end):
        lunar = _lunar_of(day)
        month, lunar_day = lunar.getMonth(), lunar.getDay()  # month < 0 in a leap month
        for occasion, (festival_month, festival_day) in FESTIVALS.items():
            if (month, lunar_day) == (festival_month, festival_day):
                found.append(Occurrence(day, occasion, lunar.getYear()))
        if (term := SOLAR_TERMS.get(lunar.getJieQi())) is not None:
            found.append(Occurrence(day, term, day.year))
    return found


def solar_anniversaries(origin: date, *, start: date, end: date) -> list[tuple[date, int]]:
    """Each year's return of a solar date between two days, with its year (29 February → 28
    February in common years); none in the origin's own year."""
    found = []
    for year in range(max(start.year, origin.year + 1), end.year + 1):
        on = _solar_anniversary(origin, year)
        if start <= on <= end:
            found.append((on, year))
    return found


def lunar_birthdays(born_on: date, *, start: date, end: date) -> list[tuple[date, int]]:
    """Each lunar year's birthday of someone born on a solar date, between two days, with its
    lunar year (the conventions in the module's docstring)."""
    birth_year, month, day = lunar_birth_of(born_on)
    # The lunar year a day belongs to is its solar year or the one before.
    first = max(start.year - 1, birth_year + 1)
    found = []
    for lunar_year in range(first, end.year + 1):
        on = lunar_birthday_in_year(month, day, lunar_year)
        if start <= on <= end:
            found.append((on, lunar_year))
    return found


@cache
def lunar_birth_of(born_on: date) -> tuple[int, int, int]:
    """The lunar year, month (a leap month as its normal number) and day of a solar date."""
    # From the lunar year's months rather than Solar.getLunar(), which computes the whole day's
    # almanac (milliseconds each: an hour for a million files).
    year = born_on.year if born_on >= _months(born_on.year)[0].first_day else born_on.year - 1
    month = next(m for m in reversed(_months(year)) if m.first_day <= born_on)
    return year, month.number, (born_on - month.first_day).days + 1


def lunar_birthday_in_year(month: int, day: int, lunar_year: int) -> date:
    """The solar date of lunar month/day in a lunar year's normal month, a 30th the month
    lacks on its 29th."""
    found = next(m for m in _months(lunar_year) if m.number == month and not m.leap)
    return found.first_day + timedelta(days=min(day, found.days) - 1)


@dataclass(frozen=True, slots=True)
class _Month:
    number: int
    leap: bool
    days: int
    first_day: date


@cache
def _months(lunar_year: int) -> tuple[_Month, ...]:
    """A lunar year's months in order (a leap month after the normal month of its number), from
    the table (crm_libs/lunar_table.py) for the years it holds."""
    table = lunar_table.table_months(lunar_year)
    if table is None:
        return computed_months(lunar_year)
    return tuple(
        _Month(number=number, leap=leap, days=days, first_day=first)
        for number, leap, days, first in table
    )


def computed_months(lunar_year: int) -> tuple[_Month, ...]:
    """A lunar year's months as lunar-python computes them (what the table holds)."""
    months = []
    for month in LunarYear.fromYear(lunar_year).getMonthsInYear():
        if month.getYear() != lunar_year:
            continue
        number = month.getMonth()  # negative for a leap month
        months.append(
            _Month(
                number=abs(number),
                leap=number < 0,
                days=month.getDayCount(),
                first_day=_date(Solar.fromJulianDay(month.getFirstJulianDay())),
            )
        )
    return tuple(months)


def _birthdays(
    occasion: Occasion, born_on: date | None, calendar: str | None, start: date, end: date
) -> list[Occurrence]:
    if born_on is None:
        return []
    dates = (
        lunar_birthdays(born_on, start=start, end=end)
        if calendar == "lunar"
        else solar_anniversaries(born_on, start=start, end=end)
    )
    return [Occurrence(on, occasion, year) for on, year in dates]


def _solar_anniversary(origin: date, year: int) -> date:
    try:
        return origin.replace(year=year)
    except ValueError:  # 29 February in a common year
        return date(year, 2, 28)


def _days(start: date, end: date) -> Iterator[date]:
    for n in range((end - start).days + 1):
        yield start + timedelta(days=n)


def _lunar_of(day: date) -> Lunar:
    return Solar.fromYmd(day.year, day.month, day.day).getLunar()


def _date(solar: Solar) -> date:
    return date(solar.getYear(), solar.getMonth(), solar.getDay())
