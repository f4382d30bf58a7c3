"""Staff statistics (DOMAIN.md §4 "Visits", §9): per staff member and period, in a store.

Every day is the store's: a period ``start``..``end`` is whole store-local days, both included.

- ``visits``: visits and calls the staff member logged (``POST /visits``) in the period;
  ``calls`` those by ``phone`` or ``expert_phone``, ``home_visits`` those by ``home``.
- ``messages``: care messages: those sent in the period in the staff member's voice (``POST
  /messages``, sent or delivered by the provider), and the tasks the staff member completed in
  the period by ``message`` (a task whose method is ``message``, done without a visit, or done
  by a visit of that method: a message written from the staff member's own phone).
- The tasks assigned to the staff member whose day falls in the period (closed ones left out:
  a refund or an archived file took them away, nobody failed them):
  ``done_on_time`` done on or before their day; ``done_late`` done after it, by the period's last
  day; ``overdue`` not done by the period's last day and past their day by then (while the
  period runs on today, a task due today is not overdue yet).
- ``tasks_due`` = done_on_time + done_late + overdue: the tasks whose day has come and that
  were done or are past it. ``completion_rate`` = (done_on_time + done_late) / tasks_due, four
  decimals, null when nothing was due. A task due later in a period still running counts in
  none of them. This is the rate DOMAIN.md §9's reassignment reads for last month
  (``staff.month_closed``).
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.driver import driver_connection

# A longer period would be a scan of years of a store's tasks for one answer.
MAX_PERIOD_DAYS = 366


@dataclass(frozen=True)
class StaffStats:
    staff_id: str
    store_id: str
    start: date
    end: date
    visits: int = 0
    calls: int = 0
    home_visits: int = 0
    messages: int = 0
    done_on_time: int = 0
    done_late: int = 0
    overdue: int = 0

    @property
    def tasks_due(self) -> int:
        return self.done_on_time + self.done_late + self.overdue

    @property
    def completion_rate(self) -> float | None:
        if not self.tasks_due:
            return None
        return round((self.done_on_time + self.done_late) / self.tasks_due, 4)


# $1 store, $2 first day, $3 last day, $4 the first day past due at the period's end, $5 the
# staff members (null: all of the store's).
TASKS_SQL = """
    SELECT t.assignee_staff_id AS staff_id,
           count(*) FILTER (WHERE t.status = 'done' AND t.done_on <= t.due_on) AS on_time,
           count(*) FILTER (WHERE t.status = 'done' AND t.done_on > t.due_on
                                  AND t.done_on <= $3) AS late,
           count(*) FILTER (WHERE (t.status = 'open' OR (t.status = 'done' AND t.done_on > $3))
                                  AND t.due_on < $4) AS overdue
    FROM task AS t
    WHERE t.store_id = $1 AND t.due_on BETWEEN $2 AND $3 AND t.status <> 'closed'
      AND t.assignee_staff_id IS NOT NULL
      AND ($5::text[] IS NULL OR t.assignee_staff_id = ANY($5::text[]))
    GROUP BY t.assignee_staff_id
"""

# $1 store, $2 from (UTC), $3 until (UTC, excluded), $4 the staff members (null: all).
_VISITS_SQL = """
    SELECT v.staff_id, count(*) AS visits,
           count(*) FILTER (WHERE v.method IN ('phone', 'expert_phone')) AS calls,
           count(*) FILTER (WHERE v.method = 'home') AS home_visits
    FROM visit AS v
    WHERE v.store_id = $1 AND v.occurred_at >= $2 AND v.occurred_at < $3
      AND v.staff_id IS NOT NULL AND ($4::text[] IS NULL OR v.staff_id = ANY($4::text[]))
    GROUP BY v.staff_id
"""

# $1 store, $2 first day, $3 last day, $4 the staff members (null: all), $5 from (UTC), $6 until
# (UTC, excluded).
_MESSAGES_SQL = """
    SELECT staff_id, count(*) AS messages FROM (
        SELECT t.done_by AS staff_id
        FROM task AS t
        WHERE t.store_id = $1 AND t.status = 'done' AND t.done_on BETWEEN $2 AND $3
          AND coalesce(t.done_method, t.method) = 'message' AND t.done_by IS NOT NULL
          AND ($4::text[] IS NULL OR t.done_by = ANY($4::text[]))
        UNION ALL
        SELECT m.staff_id
        FROM sms_message AS m
        WHERE m.store_id = $1 AND m.sent_at >= $5 AND m.sent_at < $6 AND m.staff_id IS NOT NULL
          AND ($4::text[] IS NULL OR m.staff_id = ANY($4::text[]))
    ) AS sent
    GROUP BY staff_id
"""


def past_due_from(*, end: date, today: date) -> date:
    """The first day whose tasks are not past due at the period's end (the day after it, or
    today while it runs)."""
    return min(end + timedelta(days=1), today)


async def staff_stats(
    session: AsyncSession,
    *,
    store_id: str,
    start: date,
    end: date,
    today: date,
    timezone: str,
    staff_ids: list[str] | None = None,
) -> list[StaffStats]:
    """The statistics of ``staff_ids`` (every staff member with a visit or a task in the
    period when None) in ``store_id``, in staff id order."""
    db = await driver_connection(session)
    zone = ZoneInfo(timezone)
    since = datetime.combine(start, time(), zone).astimezone(UTC)
    until = datetime.combine(end + timedelta(days=1), time(), zone).astimezone(UTC)
    found: dict[str, dict[str, Any]] = {s: {} for s in staff_ids or []}
    for row in await db.fetch(
        TASKS_SQL, store_id, start, end, past_due_from(end=end, today=today), staff_ids
    ):
        found.setdefault(row["staff_id"], {}).update(
            done_on_time=row["on_time"], done_late=row["late"], overdue=row["overdue"]
        )
    for row in await db.fetch(_VISITS_SQL, store_id, since, until, staff_ids):
        found.setdefault(row["staff_id"], {}).update(
            visits=row["visits"], calls=row["calls"], home_visits=row["home_visits"]
        )
    for row in await db.fetch(_MESSAGES_SQL, store_id, start, end, staff_ids, since, until):
        found.setdefault(row["staff_id"], {})["messages"] = row["messages"]
    return [
        StaffStats(staff_id=s, store_id=store_id, start=start, end=end, **found[s])
        for s in sorted(found)
    ]
