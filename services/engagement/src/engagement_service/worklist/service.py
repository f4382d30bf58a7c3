"""The day's work list (DOMAIN.md §4, API.md ``GET /tasks?assignee=me&due=today``): the open
tasks due today or before (overdue) in the store's time zone, most urgent first.

The order: recovery and follow-up phase tasks first (a stopped customer, a purchase's plan),
then the customer's value tier (vip, major, medium, small, inactive, prospect; a customer
scoring has not classified yet last), then the day it was due (the most overdue first), then
the id. The tier is the scores' read copy (``customer_score_seen.value_tier``), so it cannot
sit in the task's index: the index ``ix_task_open_store_assignee_due`` (open tasks only) finds
the staff member's tasks up to today, and the page is a top-N sort of those. They are few: a
list that keeps up holds a day's tasks and the overdue ones, never the done, closed or future
ones, which the index leaves out.

A page follows the cursor's (priority, tier, due day, id) in that order, so a task done or a
tier changed between two pages moves nothing already shown onto a later page twice.
"""

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.driver import driver_connection
from crm_libs.problems import ProblemError

# The kinds that come first, and the tiers in order (an unclassified customer after them).
FIRST_KINDS = ("recovery", "follow_up")
TIERS = ("vip", "major", "medium", "small", "inactive", "prospect")

_PRIORITY = "CASE WHEN t.kind IN ('recovery', 'follow_up') THEN 0 ELSE 1 END"
_TIER_RANK = (
    "CASE s.value_tier "
    + " ".join(f"WHEN '{tier}' THEN {rank}" for rank, tier in enumerate(TIERS))
    + f" ELSE {len(TIERS)} END"
)
_COLUMNS = """
    t.id, t.customer_id, t.kind, t.phase, t.sku, t.due_on, t.method, t.methods_allowed,
    t.purpose, t.status, t.closed_reason, t.assignee_staff_id, t.done_at, t.done_by, t.done_on,
    t.rescheduled_from, t.reschedule_reason, t.occasion, t.occasion_on, t.recovery_reason,
    t.with_manager, t.recovery_step, s.value_tier
"""


@dataclass(frozen=True)
class WorkKey:
    """Where a task sits in the list's order: what a cursor carries."""

    priority: int
    tier_rank: int
    due_on: date
    id: str

    _MARK = "w1"

    def encode(self) -> str:
        return "|".join(
            (self._MARK, str(self.priority), str(self.tier_rank), self.due_on.isoformat(), self.id)
        )

    @classmethod
    def decode(cls, raw: str) -> "WorkKey":
        try:
            mark, priority, tier_rank, due_on, task_id = raw.split("|", 4)
            if mark != cls._MARK:
                raise ValueError(mark)
            return cls(int(priority), int(tier_rank), date.fromisoformat(due_on), task_id)
        except ValueError as exc:
            raise ProblemError("The cursor is not one this list issued", status=400) from exc


def statement(*, store: bool, staff: bool, after: bool) -> str:
    """The work list's SELECT, its values numbered in this order: today, the store, the staff
    member, the cursor's four, the limit (also what ``bench/worklist.py`` times raw)."""
    where = ["t.status = 'open'", "t.due_on <= $1"]
    args = 1
    if store:
        args += 1
        where.append(f"t.store_id = ${args}")
    if staff:
        args += 1
        where.append(f"t.assignee_staff_id = ${args}")
    if after:
        where.append(
            f"({_PRIORITY}, {_TIER_RANK}, t.due_on, t.id) > "
            f"(${args + 1}::int, ${args + 2}::int, ${args + 3}::date, ${args + 4}::text)"
        )
        args += 4
    # Only constants and numbered placeholders are put together: no value enters the text.
    return f"""
        SELECT {_COLUMNS}, {_PRIORITY} AS priority, {_TIER_RANK} AS tier_rank
        FROM task AS t LEFT JOIN customer_score_seen AS s ON s.customer_id = t.customer_id
        WHERE {" AND ".join(where)}
        ORDER BY priority, tier_rank, t.due_on, t.id
        LIMIT ${args + 1}
    """  # noqa: S608


def arguments(
    *, today: date, store_id: str | None, staff_id: str | None, after: WorkKey | None, limit: int
) -> list[Any]:
    values: list[Any] = [today]
    values += [v for v in (store_id, staff_id) if v is not None]
    if after is not None:
        values += [after.priority, after.tier_rank, after.due_on, after.id]
    return [*values, limit]


async def work_list(
    session: AsyncSession,
    *,
    today: date,
    store_id: str | None,
    staff_id: str | None,
    after: WorkKey | None,
    limit: int,
) -> list[Any]:
    """``limit + 1`` rows of the list after ``after``: the task's columns, ``value_tier``,
    ``priority`` and ``tier_rank``."""
    sql = statement(store=store_id is not None, staff=staff_id is not None, after=after is not None)
    db = await driver_connection(session)
    rows: list[Any] = await db.fetch(
        sql,
        *arguments(today=today, store_id=store_id, staff_id=staff_id, after=after, limit=limit + 1),
    )
    return rows


# A store's time zone: its active files carry it (engagement keeps no store list).
_STORE_ZONE_SQL = """
    SELECT timezone FROM customer_file
    WHERE store_id = $1 AND status = 'active' AND timezone IS NOT NULL LIMIT 1
"""


async def store_timezone(session: AsyncSession, *, store_id: str | None) -> str | None:
    if store_id is None:
        return None
    zone: str | None = await (await driver_connection(session)).fetchval(_STORE_ZONE_SQL, store_id)
    return zone
