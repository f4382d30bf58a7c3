"""Quiet hours (DOMAIN.md §5): no message from 21:00 to 08:00 in the store's time zone.

A message due in them is held until 08:00 and then sent, never dropped. The bounds are exact:
20:59:59 sends, 21:00:00 holds, 07:59:59 holds, 08:00:00 sends.
"""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

QUIET_FROM = time(21, 0)
QUIET_UNTIL = time(8, 0)


def is_quiet(at: datetime, zone: ZoneInfo) -> bool:
    """Whether ``at`` falls in the store's quiet hours."""
    local = at.astimezone(zone).time()
    return local >= QUIET_FROM or local < QUIET_UNTIL


def quiet_ends_at(at: datetime, zone: ZoneInfo) -> datetime:
    """The store's next 08:00 after ``at`` (in UTC): when a message held at ``at`` is sent."""
    local = at.astimezone(zone)
    day = local.date() if local.time() < QUIET_UNTIL else local.date() + timedelta(days=1)
    return datetime.combine(day, QUIET_UNTIL, zone).astimezone(UTC)
