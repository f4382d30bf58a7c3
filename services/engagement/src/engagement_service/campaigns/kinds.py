"""The kinds of campaign, the template category each one sends, and the calendar dates of the
festivals and solar terms they are named by (care/special_days.py's one calendar)."""

from datetime import date
from enum import StrEnum

from lunar_python import Lunar

from engagement_service.care.special_days import (
    FESTIVALS,
    SOLAR_TERMS,
    Occasion,
    lunar_birthday_in_year,
)
from engagement_service.messages.categories import Category


class Kind(StrEnum):
    BIRTHDAY = "birthday"  # the customers whose birthday (solar or lunar) falls in the days
    FESTIVAL = "festival"  # every customer of the store, for a festival
    SEASON = "season"  # every customer of the store, for a solar term that starts a season
    MISS_YOU = "miss_you"  # the customers unseen (no purchase, no visit) for N days
    MANUAL = "manual"  # a segment of scoring's


# The categories a kind's template may be: a festival's wishes are a holiday message; a manual
# campaign is a care message or, to those who opted in, an advert. A birthday campaign sending a
# season template would pass the season's word rules, not the birthday's: refused.
CATEGORIES: dict[Kind, frozenset[Category]] = {
    Kind.BIRTHDAY: frozenset({Category.BIRTHDAY}),
    Kind.FESTIVAL: frozenset({Category.HOLIDAY}),
    Kind.SEASON: frozenset({Category.SEASON}),
    Kind.MISS_YOU: frozenset({Category.MISS_YOU}),
    Kind.MANUAL: frozenset({Category.CARE, Category.PROMOTIONAL}),
}

FESTIVAL_OCCASIONS = frozenset(FESTIVALS)
SEASON_OCCASIONS = frozenset(SOLAR_TERMS.values())
_TERM_NAMES = {occasion: name for name, occasion in SOLAR_TERMS.items()}


def occasion_on(occasion: Occasion, *, on_or_after: date) -> date:
    """The festival's or solar term's next day on or after ``on_or_after``."""
    for year in (on_or_after.year - 1, on_or_after.year, on_or_after.year + 1):
        day = _occasion_in(occasion, year)
        if day >= on_or_after:
            return day
    raise ValueError(f"{occasion} has no day after {on_or_after}")  # pragma: no cover


def _occasion_in(occasion: Occasion, year: int) -> date:
    if occasion in FESTIVALS:
        # A festival of lunar year Y; 春节 of lunar year Y is in solar year Y.
        month, day = FESTIVALS[occasion]
        return lunar_birthday_in_year(month, day, year)
    # The solar term of solar year Y: the library's table for the lunar year holding 1 July.
    table = Lunar.fromYmd(year, 6, 1).getJieQiTable()
    solar = table[_TERM_NAMES[occasion]]
    found = date(solar.getYear(), solar.getMonth(), solar.getDay())
    if found.year != year:  # 立春 of Y is in the table of lunar Y-1 too, as its last entry
        solar = Lunar.fromYmd(year, 1, 1).getJieQiTable()[_TERM_NAMES[occasion]]
        found = date(solar.getYear(), solar.getMonth(), solar.getDay())
    return found
