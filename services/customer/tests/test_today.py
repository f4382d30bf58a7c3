"""A store's today, kept per time zone for a minute at most and never past the zone's next
midnight (offset changes included), is the day the clock gives; a lunar month found by its
number is the one in the year's list."""

import time
from datetime import UTC, datetime, timedelta
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
        ("Asia/Shanghai", (2024, 5, 1, 22, 30), 60),  # kept in the day's last hours too
        ("Asia/Shanghai", (2024, 5, 1, 23, 59, 30), 30),
        # Santiago's clocks went from 00:00 to 01:00 on 8 September 2024, Havana's (at
        # midnight too) from 00:00 to 01:00 on 10 March 2024: the day ends at the change.
        ("America/Santiago", (2024, 9, 7, 23, 59, 50), 10),
        ("America/Havana", (2024, 3, 9, 23, 59, 15), 45),
    ],
)
def test_a_day_is_kept_a_minute_at_most_and_until_the_zone_s_midnight(
    zone: str, local: tuple[int, ...], kept: float
) -> None:
    read_at = datetime(*local, tzinfo=ZoneInfo(zone))
    until = calendars.today_kept_until(read_at)
    assert until - read_at.timestamp() == pytest.approx(kept, abs=1e-6)


# Days whose midnight an offset change skips, repeats or moves (Santiago: 00:00 to 01:00 on
# 8 September 2024, 00:00 back to 23:00 on 6 April 2024; Havana: 00:00 to 01:00 on 10 March
# 2024; Lord Howe's half hour; Apia's skipped 30 December 2011), read every 20 seconds over the
# last 20 minutes before and the first 10 after.
DAYS_OF_CHANGE = [
    ("America/Santiago", datetime(2024, 9, 8, 4, tzinfo=UTC)),
    ("America/Santiago", datetime(2024, 4, 7, 3, tzinfo=UTC)),
    ("America/Havana", datetime(2024, 3, 10, 5, tzinfo=UTC)),
    ("Australia/Lord_Howe", datetime(2024, 10, 5, 13, 30, tzinfo=UTC)),
    ("Pacific/Apia", datetime(2011, 12, 30, 10, tzinfo=UTC)),
    ("Asia/Shanghai", datetime(2024, 5, 1, 16, tzinfo=UTC)),
]


@pytest.mark.parametrize(("zone", "near"), DAYS_OF_CHANGE)
def test_a_kept_day_is_the_zone_s_day_until_the_instant_it_is_kept_to(
    zone: str, near: datetime
) -> None:
    tz = ZoneInfo(zone)
    for step in range(-60, 31):
        read_at = (near + timedelta(seconds=20 * step)).astimezone(tz)
        until = calendars.today_kept_until(read_at)
        assert until > read_at.timestamp()
        last_kept = datetime.fromtimestamp(until - 1e-3, UTC).astimezone(tz)
        assert last_kept.date() == read_at.date(), (read_at, last_kept)


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
