"""A store's complaint statistics over a period (DOMAIN.md §7: about 70 % of resolved
complainers keep buying, 95 % when resolved on the spot, so both are measured).

Days are the store's; a period ``start``..``end`` is whole store-local days, both included.

- ``opened``: complaints opened in the period, ``still_open`` those of them not closed now,
  ``by_category`` the opened ones per category.
- ``closed``: complaints closed (a satisfied feedback) in the period, whenever opened;
  ``resolved_on_the_spot`` those of them resolved on the spot (complaints/steps.py's
  ``on_the_spot``: closed in the first round on the store-local day they were opened);
  ``on_the_spot_rate`` their share of ``closed``, null when none closed.
- resolution time, opened to closed, of the complaints closed in the period: mean and median in
  minutes (one decimal), null when none closed.
- ``second_follow_ups``: unsatisfied feedbacks recorded in the period (each put a follow-up
  task on the owner's list).
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.driver import driver_connection

# $1 store, $2 first day, $3 last day.
_OPENED_SQL = """
    SELECT category, count(*) AS opened, count(*) FILTER (WHERE status = 'open') AS still_open
    FROM complaint WHERE store_id = $1 AND opened_on BETWEEN $2 AND $3
    GROUP BY category
"""
_CLOSED_SQL = """
    SELECT count(*) AS closed,
           count(*) FILTER (WHERE resolved_on_the_spot) AS on_the_spot,
           avg(extract(epoch FROM closed_at - opened_at) / 60) AS mean_minutes,
           percentile_cont(0.5) WITHIN GROUP (
               ORDER BY extract(epoch FROM closed_at - opened_at) / 60) AS median_minutes
    FROM complaint WHERE store_id = $1 AND closed_on BETWEEN $2 AND $3
"""
# $1 store, $2 from (UTC), $3 until (UTC, excluded).
_UNSATISFIED_SQL = """
    SELECT count(*) FROM complaint_step
    WHERE store_id = $1 AND step = 'feedback' AND satisfied = false
      AND taken_at >= $2 AND taken_at < $3
"""


@dataclass(frozen=True)
class ComplaintStats:
    store_id: str
    start: date
    end: date
    opened: int = 0
    still_open: int = 0
    by_category: dict[str, int] = field(default_factory=dict)
    closed: int = 0
    resolved_on_the_spot: int = 0
    mean_resolution_minutes: float | None = None
    median_resolution_minutes: float | None = None
    second_follow_ups: int = 0

    @property
    def on_the_spot_rate(self) -> float | None:
        return round(self.resolved_on_the_spot / self.closed, 4) if self.closed else None


def _minutes(value: object) -> float | None:
    return None if value is None else round(float(value), 1)  # type: ignore[arg-type]


async def complaint_stats(
    session: AsyncSession, *, store_id: str, start: date, end: date, timezone: str
) -> ComplaintStats:
    """The complaint statistics of ``store_id`` over ``start``..``end``."""
    db = await driver_connection(session)
    zone = ZoneInfo(timezone)
    since = datetime.combine(start, time(), zone).astimezone(UTC)
    until = datetime.combine(end + timedelta(days=1), time(), zone).astimezone(UTC)
    opened = await db.fetch(_OPENED_SQL, store_id, start, end)
    closed = await db.fetchrow(_CLOSED_SQL, store_id, start, end)
    unsatisfied = await db.fetchval(_UNSATISFIED_SQL, store_id, since, until)
    return ComplaintStats(
        store_id=store_id,
        start=start,
        end=end,
        opened=sum(r["opened"] for r in opened),
        still_open=sum(r["still_open"] for r in opened),
        by_category={r["category"]: r["opened"] for r in sorted(opened, key=lambda r: r[0])},
        closed=closed["closed"],
        resolved_on_the_spot=closed["on_the_spot"],
        mean_resolution_minutes=_minutes(closed["mean_minutes"]),
        median_resolution_minutes=_minutes(closed["median_minutes"]),
        second_follow_ups=unsatisfied,
    )
