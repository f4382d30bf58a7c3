from datetime import UTC, date, datetime, timedelta

import pytest

from crm_libs.problems import InvalidField
from customer_service.customers.calendars import (
    LunarDate,
    check_birthday,
    check_date_in_range,
    leap_month_of,
    lunar_birthday_in_year,
    lunar_date,
    lunar_to_solar,
    next_birthday_on,
    parse_lunar_date,
    solar_to_lunar,
    today_in,
)


def _refusal(exc: pytest.ExceptionInfo[InvalidField]) -> tuple[str, str]:
    [error] = exc.value.errors or []
    return error["field"], error["message"]


def test_leap_months_are_the_almanac_s() -> None:
    assert leap_month_of(2020) == 4
    assert leap_month_of(2023) == 2
    assert leap_month_of(2025) == 6
    assert leap_month_of(2033) == 11
    assert leap_month_of(2021) == 0
    assert leap_month_of(2024) == 0


def test_lunar_new_years_and_a_leap_month_day_fall_on_their_solar_dates() -> None:
    assert lunar_to_solar(LunarDate(1950, 1, 1)) == date(1950, 2, 17)
    assert lunar_to_solar(LunarDate(2023, 1, 1)) == date(2023, 1, 22)
    assert lunar_to_solar(LunarDate(2024, 1, 1)) == date(2024, 2, 10)
    assert lunar_to_solar(lunar_date(2023, 2, 15, leap=True)) == date(2023, 4, 5)
    assert lunar_to_solar(lunar_date(2023, 2, 15)) == date(2023, 3, 6)
    # The day before a lunar new year is the last day of the previous lunar year.
    assert solar_to_lunar(date(2024, 2, 9)) == LunarDate(2023, 12, 30)


def test_every_lunar_month_from_1900_to_2100_follows_the_last_and_converts_both_ways() -> None:
    last_day_before: date | None = None
    for year in range(1900, 2101):
        leap = leap_month_of(year)
        months = [(m, False) for m in range(1, 13)]
        if leap:
            months.insert(leap, (leap, True))
        for month, is_leap in months:
            days = 30 if _exists(year, month, 30, is_leap) else 29
            first = lunar_to_solar(lunar_date(year, month, 1, is_leap))
            last = lunar_to_solar(lunar_date(year, month, days, is_leap))
            assert (last - first).days == days - 1
            assert last_day_before is None or first == last_day_before + timedelta(days=1)
            for day, solar in ((1, first), (days, last)):
                assert solar_to_lunar(solar) == LunarDate(year, month, day, is_leap)
            last_day_before = last


def test_the_thirtieth_of_a_thirty_day_month_exists() -> None:
    assert lunar_date(2023, 2, 30) == LunarDate(2023, 2, 30)
    assert lunar_to_solar(lunar_date(2023, 2, 30)) + timedelta(days=1) == lunar_to_solar(
        lunar_date(2023, 2, 1, leap=True)
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((2023, 3, 30), "the 3rd month of lunar 2023 has 29 days: there is no 30th"),
        ((2020, 4, 30, True), "the leap 4th month of lunar 2020 has 29 days: there is no 30th"),
        ((2023, 3, 1, True), "lunar 2023 has no leap 3rd month (its leap month is the 2nd)"),
        ((2021, 4, 1, True), "lunar 2021 has no leap 4th month (it has no leap month)"),
        ((2023, 13, 1), "a lunar month is 1 to 12"),
        ((2023, 0, 1), "a lunar month is 1 to 12"),
        ((2023, 1, 31), "a lunar day is 1 to 30"),
        ((1899, 1, 1), "lunar dates are known for the years 1900-2100"),
        ((2101, 1, 1), "lunar dates are known for the years 1900-2100"),
    ],
)
def test_lunar_dates_that_do_not_exist_are_refused_with_the_reason(
    args: tuple[int, ...], message: str
) -> None:
    with pytest.raises(InvalidField) as refused:
        lunar_date(*args, field="birthday")  # type: ignore[arg-type]
    assert _refusal(refused) == ("birthday", message)


def test_lunar_dates_are_written_with_an_l_for_a_leap_month() -> None:
    assert parse_lunar_date("2023-L02-15") == LunarDate(2023, 2, 15, leap=True)
    assert parse_lunar_date("2023-闰2-15") == LunarDate(2023, 2, 15, leap=True)
    assert parse_lunar_date(" 1956-03-08 ") == LunarDate(1956, 3, 8)
    assert str(LunarDate(2023, 2, 15, leap=True)) == "2023-L02-15"
    assert str(LunarDate(1956, 3, 8)) == "1956-03-08"
    for text in ("2023/02/15", "02-15", "2023-X02-15", ""):
        with pytest.raises(InvalidField):
            parse_lunar_date(text)
    with pytest.raises(InvalidField) as refused:
        parse_lunar_date("2023-L03-01", field="spouse.birthday")
    assert _refusal(refused)[0] == "spouse.birthday"


def test_a_birthday_on_the_thirtieth_falls_on_the_twenty_ninth_in_a_short_month() -> None:
    born = lunar_date(2022, 3, 30)  # lunar 2022's 3rd month has 30 days, 2023's has 29
    assert lunar_birthday_in_year(born, 2022) == lunar_to_solar(born)
    on = lunar_birthday_in_year(born, 2023)
    assert on == lunar_to_solar(lunar_date(2023, 3, 29))
    assert solar_to_lunar(on + timedelta(days=1)) == LunarDate(2023, 4, 1)


def test_a_birthday_in_a_leap_month_falls_in_the_normal_month() -> None:
    born = lunar_date(2020, 4, 10, leap=True)
    assert lunar_birthday_in_year(born, 2023) == lunar_to_solar(lunar_date(2023, 4, 10))
    # Even in a year with the same leap month, the normal month comes first and is the one.
    assert lunar_birthday_in_year(born, 2020) == lunar_to_solar(lunar_date(2020, 4, 10))


@pytest.mark.parametrize(
    "born",
    [
        LunarDate(1950, 12, 20),
        LunarDate(1950, 1, 1),
        LunarDate(1960, 8, 15),
        LunarDate(2022, 3, 30),
        LunarDate(2020, 4, 29, leap=True),
        LunarDate(1955, 11, 30),
    ],
)
def test_the_next_lunar_birthday_is_the_first_day_on_or_after_with_its_month_and_day(
    born: LunarDate,
) -> None:
    start = date(2024, 1, 1)
    for offset in range(0, 800, 7):
        after = start + timedelta(days=offset)
        on = next_birthday_on(born, on_or_after=after)
        assert on >= after
        lunar = solar_to_lunar(on)
        assert (lunar.month, lunar.leap) == (born.month, False)
        assert lunar.day == min(born.day, lunar_day_count(lunar.year, lunar.month))
        # No earlier day in between is the birthday.
        assert lunar_birthday_in_year(born, lunar.year - 1) < after or on == after


def lunar_day_count(year: int, month: int) -> int:
    return 30 if _exists(year, month, 30) else 29


def _exists(year: int, month: int, day: int, leap: bool = False) -> bool:
    try:
        lunar_date(year, month, day, leap)
    except InvalidField:
        return False
    return True


def test_a_solar_birthday_on_29_february_is_kept_on_the_28th_in_common_years() -> None:
    born = date(1952, 2, 29)
    assert next_birthday_on(born, on_or_after=date(2025, 1, 1)) == date(2025, 2, 28)
    assert next_birthday_on(born, on_or_after=date(2025, 3, 1)) == date(2026, 2, 28)
    assert next_birthday_on(born, on_or_after=date(2027, 3, 1)) == date(2028, 2, 29)
    assert next_birthday_on(date(1960, 5, 4), on_or_after=date(2025, 5, 4)) == date(2025, 5, 4)


def test_today_and_the_future_depend_on_the_store_s_time_zone() -> None:
    # 20:00 UTC is already the next day in Shanghai (UTC+8).
    now = datetime(2024, 5, 1, 20, 0, tzinfo=UTC)
    assert today_in("Asia/Shanghai", now=now) == date(2024, 5, 2)
    assert today_in("UTC", now=now) == date(2024, 5, 1)
    assert check_date_in_range(
        date(2024, 5, 2), timezone="Asia/Shanghai", field="birthday", now=now
    ) == date(2024, 5, 2)
    with pytest.raises(InvalidField) as refused:
        check_date_in_range(date(2024, 5, 2), timezone="UTC", field="wedding_anniversary", now=now)
    assert _refusal(refused) == (
        "wedding_anniversary",
        "lies in the future (today is 2024-05-01 in UTC)",
    )


def test_dates_before_1900_are_refused_and_the_clock_is_read_when_no_time_is_given() -> None:
    with pytest.raises(InvalidField) as refused:
        check_date_in_range(date(1899, 12, 31), timezone="Asia/Shanghai", field="birthday")
    assert _refusal(refused) == ("birthday", "lies before 1900")
    assert check_date_in_range(date(1900, 1, 1), timezone="Asia/Shanghai", field="birthday")
    # Two days ahead of the clock is the future in every time zone.
    in_two_days = datetime.now(UTC).date() + timedelta(days=2)
    with pytest.raises(InvalidField):
        check_date_in_range(in_two_days, timezone="Pacific/Kiritimati", field="birthday")
    with pytest.raises(ValueError, match="unknown time zone"):
        today_in("Mars/Olympus_Mons")


def test_a_birthday_is_checked_in_its_calendar() -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    zone = "Asia/Shanghai"
    assert check_birthday("1956-03-08", "lunar", timezone=zone, now=now) == LunarDate(1956, 3, 8)
    assert check_birthday("1956-03-08", "solar", timezone=zone, now=now) == date(1956, 3, 8)
    assert check_birthday(date(1956, 3, 8), "solar", timezone=zone, now=now) == date(1956, 3, 8)
    # Lunar 2024-03-23 is 1 May 2024 (solar): today; the 24th is tomorrow.
    assert lunar_to_solar(LunarDate(2024, 3, 23)) == date(2024, 5, 1)
    assert check_birthday("2024-03-23", "lunar", timezone=zone, now=now) == LunarDate(2024, 3, 23)
    with pytest.raises(InvalidField) as refused:
        check_birthday("2024-03-24", "lunar", timezone=zone, now=now)
    assert _refusal(refused) == (
        "birthday",
        "lies in the future (today is 2024-05-01 in Asia/Shanghai)",
    )
    with pytest.raises(InvalidField) as refused:
        check_birthday("1956-02-30", "solar", timezone=zone, now=now)
    assert _refusal(refused) == ("birthday", "a date is YYYY-MM-DD")
    with pytest.raises(InvalidField) as refused:
        check_birthday("2023-03-30", "lunar", timezone=zone, now=now)
    assert _refusal(refused)[1].endswith("there is no 30th")
    with pytest.raises(InvalidField) as refused:
        check_birthday(date(1956, 3, 8), "lunar", timezone=zone, now=now)
    assert _refusal(refused)[0] == "birthday"
    with pytest.raises(InvalidField) as refused:
        check_birthday("1956-03-08", "chinese", timezone=zone, now=now)  # type: ignore[arg-type]
    assert _refusal(refused)[0] == "birthday_calendar"
