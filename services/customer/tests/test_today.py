"""A store's today, kept per time zone for a minute at most and never into its last two hours,
is the day the clock gives; a lunar month found by its number is the one in the year's list."""

import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from customer_service.customers import calendars

ZONES = ["Asia/Shanghai", "UTC", "America/Santiago", "Pacific/Apia", "Australia/Lord_Howe"]


@pytest.mark.parametrize("zone", ZONES)
def test_today_kept_is_the_clock_s_day_in_the_zone(zone: str) -> None:
    for _ in range(3):  # read, then kept
        expected = datetime.now(UTC).astimezone(ZoneInfo(zone)).date()
        assert calendars.today_in(zone) == expected
    assert calendars.today_in(zone, now=datetime(2024, 5, 1, 20, tzinfo=UTC)) == (
        datetime(2024, 5, 1, 20, tzinfo=UTC).astimezone(ZoneInfo(zone)).date()
    )


@pytest.mark.parametrize(
    ("zone", "local", "kept"),
    [
        ("Asia/Shanghai", (2024, 5, 1, 10, 0), 60),
        ("Asia/Shanghai", (2024, 5, 1, 21, 59, 30), 30),
        ("Asia/Shanghai", (2024, 5, 1, 22, 30), 0),
        ("Asia/Shanghai", (2024, 5, 1, 23, 59), 0),
        # Santiago's clocks went from 00:00 to 01:00 on 8 September 2024, Havana's (at
        # midnight too) from 00:00 to 01:00 on 10 March 2024: never kept into the last two hours.
        ("America/Santiago", (2024, 9, 7, 21, 59, 50), 10),
        ("America/Santiago", (2024, 9, 7, 22, 0, 1), 0),
        ("America/Havana", (2024, 3, 9, 23, 0), 0),
    ],
)
def test_a_day_is_kept_a_minute_at_most_and_not_in_the_zone_s_last_two_hours(
    zone: str, local: tuple[int, ...], kept: float
) -> None:
    read_at = datetime(*local, tzinfo=ZoneInfo(zone))
    until = calendars.today_kept_until(read_at)
    assert until - time.time() == pytest.approx(kept, abs=1)


def test_a_month_by_its_number_is_the_year_s_month() -> None:
    for year in range(1899, 2103):
        months = calendars._months(year)
        for month in range(1, 13):
            for leap in (False, True):
                expected = next((m for m in months if (m.month, m.leap) == (month, leap)), None)
                assert calendars._month(year, month, leap) == expected


def test_a_day_kept_past_its_time_is_read_again() -> None:
    zone = "Asia/Shanghai"
    expected = datetime.now(UTC).astimezone(ZoneInfo(zone)).date()
    calendars._TODAY[zone] = (expected.replace(year=2000), time.time() - 1)
    assert calendars.today_in(zone) == expected
