"""The special days' calendar rules across years. Expected dates are the published calendar's
(Hong Kong Observatory / 中国农历), written out, never computed by the code under test."""

from datetime import date

from crm_libs import lunar_table
from engagement_service.care import special_days
from engagement_service.care.special_days import (
    Occasion,
    Occurrence,
    PersonalDates,
    lunar_birthdays,
    personal_occasions,
    shared_occasions,
    solar_anniversaries,
)

YEAR_2025 = {"start": date(2025, 1, 1), "end": date(2025, 12, 31)}


def test_a_solar_birthday_on_29_february_is_kept_on_28_february_in_common_years() -> None:
    born = date(1952, 2, 29)
    assert solar_anniversaries(born, start=date(2025, 1, 1), end=date(2028, 12, 31)) == [
        (date(2025, 2, 28), 2025),
        (date(2026, 2, 28), 2026),
        (date(2027, 2, 28), 2027),
        (date(2028, 2, 29), 2028),
    ]


def test_a_solar_birthday_across_the_year_end_belongs_to_the_new_year() -> None:
    dates = PersonalDates(birthday=date(1950, 1, 2), birthday_calendar="solar")
    assert personal_occasions(dates, start=date(2025, 12, 29), end=date(2026, 1, 5)) == [
        Occurrence(date(2026, 1, 2), Occasion.BIRTHDAY, 2026)
    ]


def test_nothing_falls_in_the_year_of_the_origin() -> None:
    wed = date(2025, 5, 1)
    assert solar_anniversaries(wed, start=date(2025, 1, 1), end=date(2026, 12, 31)) == [
        (date(2026, 5, 1), 2026)
    ]


def test_a_lunar_birthday_in_a_leap_month_year_stays_in_the_normal_month() -> None:
    # Lunar 1960 and 2025 both have a leap 6th month (闰六月初十 2025 = 2025-08-03). Born on
    # 六月初十 (1960-07-03) or on 闰六月初十 (1960-08-02), the birthday is the normal month's,
    # 2025-07-04, once.
    assert lunar_birthdays(date(1960, 7, 3), **YEAR_2025) == [(date(2025, 7, 4), 2025)]
    assert lunar_birthdays(date(1960, 8, 2), **YEAR_2025) == [(date(2025, 7, 4), 2025)]


def test_someone_born_in_a_leap_month_celebrates_in_the_normal_month_of_that_number() -> None:
    # 2020-06-01 = 闰四月初十 2020: in 2025 (no leap 4th month) 四月初十 = 2025-05-07.
    assert lunar_birthdays(date(2020, 6, 1), **YEAR_2025) == [(date(2025, 5, 7), 2025)]
    # 1987-08-09 = 闰六月十五 1987; 2025 repeats the leap 6th month (闰六月十五 = 2025-08-08), the
    # birthday stays on the normal 六月十五 = 2025-07-09.
    assert lunar_birthdays(date(1987, 8, 9), **YEAR_2025) == [(date(2025, 7, 9), 2025)]


def test_a_12th_month_lunar_birthday_falls_in_the_next_solar_year() -> None:
    # 腊月十五: lunar 2024's is 2025-01-14, lunar 2025's 2026-02-02 (lunar 2025 ends 2026-02-16).
    born = date(1950, 2, 1)  # 腊月十五 of lunar 1949
    assert lunar_birthdays(born, **YEAR_2025) == [(date(2025, 1, 14), 2024)]
    assert lunar_birthdays(born, start=date(2026, 1, 1), end=date(2026, 2, 28)) == [
        (date(2026, 2, 2), 2025)
    ]


def test_the_12th_month_can_begin_in_december_so_a_solar_year_may_hold_none() -> None:
    # 腊月初一: lunar 2024's is 2024-12-31, lunar 2025's 2026-01-19: none in solar 2025.
    born = date(1950, 1, 18)  # 腊月初一 of lunar 1949
    assert lunar_birthdays(born, **YEAR_2025) == []
    assert lunar_birthdays(born, start=date(2024, 12, 25), end=date(2026, 1, 31)) == [
        (date(2024, 12, 31), 2024),
        (date(2026, 1, 19), 2025),
    ]


def test_a_lunar_30th_falls_on_the_29th_when_the_month_has_29_days() -> None:
    # 1943-02-04 = 腊月三十 of lunar 1942; lunar 2025's 腊月 has 29 days: 除夕 2026-02-16.
    born = date(1943, 2, 4)
    assert lunar_birthdays(born, start=date(2026, 1, 1), end=date(2026, 12, 31)) == [
        (date(2026, 2, 16), 2025)
    ]


def test_the_spouse_birthday_follows_the_spouses_own_calendar() -> None:
    dates = PersonalDates(
        birthday=date(1950, 3, 1),
        birthday_calendar="solar",
        spouse_birthday=date(1950, 3, 1),  # 正月十三 of lunar 1950
        spouse_birthday_calendar="lunar",
        wedding_anniversary=date(1972, 3, 1),
    )
    assert personal_occasions(dates, start=date(2025, 2, 1), end=date(2025, 3, 31)) == [
        Occurrence(date(2025, 2, 10), Occasion.SPOUSE_BIRTHDAY, 2025),
        Occurrence(date(2025, 3, 1), Occasion.BIRTHDAY, 2025),
        Occurrence(date(2025, 3, 1), Occasion.WEDDING_ANNIVERSARY, 2025),
    ]


def test_festivals_and_season_changes_of_2025() -> None:
    assert shared_occasions(**YEAR_2025) == [
        Occurrence(date(2025, 1, 29), Occasion.SPRING_FESTIVAL, 2025),
        Occurrence(date(2025, 2, 3), Occasion.LICHUN, 2025),
        Occurrence(date(2025, 5, 5), Occasion.LIXIA, 2025),
        Occurrence(date(2025, 5, 31), Occasion.DRAGON_BOAT, 2025),
        Occurrence(date(2025, 8, 7), Occasion.LIQIU, 2025),
        Occurrence(date(2025, 10, 6), Occasion.MID_AUTUMN, 2025),
        Occurrence(date(2025, 10, 29), Occasion.DOUBLE_NINTH, 2025),
        Occurrence(date(2025, 11, 7), Occasion.LIDONG, 2025),
    ]


def test_a_leap_5th_month_has_no_second_dragon_boat_festival() -> None:
    # Lunar 2028 has a leap 5th month (闰五月初五 = 2028-06-27): 端午 is 五月初五 only.
    found = shared_occasions(start=date(2028, 1, 1), end=date(2028, 12, 31))
    assert [o for o in found if o.occasion == Occasion.DRAGON_BOAT] == [
        Occurrence(date(2028, 5, 28), Occasion.DRAGON_BOAT, 2028)
    ]


def test_the_spring_festival_across_the_year_end_belongs_to_its_lunar_year() -> None:
    found = shared_occasions(start=date(2025, 12, 25), end=date(2026, 2, 28))
    assert found == [
        Occurrence(date(2026, 2, 4), Occasion.LICHUN, 2026),
        Occurrence(date(2026, 2, 17), Occasion.SPRING_FESTIVAL, 2026),
    ]


def test_every_year_of_the_lunar_table_is_the_months_lunar_python_computes() -> None:
    years = [year for year, *_ in lunar_table.YEARS]
    assert years == list(range(1899, 2102))
    for year in years:
        assert special_days._months(year) == special_days.computed_months(year), year


def test_a_lunar_year_outside_the_table_is_computed() -> None:
    special_days._months.cache_clear()
    assert special_days._months(2102) == special_days.computed_months(2102)
    assert len(special_days._months(2102)) in (12, 13)
