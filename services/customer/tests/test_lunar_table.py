"""The lunar months written down in crm_libs/lunar_table.py are lunar-python's, every year."""

from datetime import date

from crm_libs import lunar_table
from customer_service.customers import calendars
from customer_service.customers.calendars import LunarDate


def test_every_year_of_the_table_is_the_months_lunar_python_computes() -> None:
    years = [year for year, *_ in lunar_table.YEARS]
    assert years == list(range(1899, 2102))
    for year in years:
        assert calendars._months(year) == calendars.computed_months(year), year


def test_a_year_outside_the_table_is_computed() -> None:
    calendars._months.cache_clear()
    assert calendars._months(2102) == calendars.computed_months(2102)
    assert len(calendars._months(2102)) in (12, 13)


def test_leap_months_and_month_ends_read_from_the_table() -> None:
    # 2023 has a leap 2nd month (闰二月), 2020 a leap 4th; 1900 a leap 8th.
    assert calendars.leap_month_of(2023) == 2
    assert calendars.leap_month_of(2020) == 4
    assert calendars.leap_month_of(1900) == 8
    assert calendars.leap_month_of(2024) == 0
    assert calendars.lunar_to_solar(LunarDate(2023, 2, 1, leap=True)) == date(2023, 3, 22)
    assert calendars.lunar_to_solar(LunarDate(2020, 4, 1, leap=True)) == date(2020, 5, 23)
    assert calendars.lunar_to_solar(LunarDate(2024, 1, 1)) == date(2024, 2, 10)
    assert calendars.solar_to_lunar(date(1900, 1, 30)) == LunarDate(1899, 12, 30)
