"""What staff do to a task: complete it (by a visit or without one), reschedule it with a reason,
and a manager's reassignment to an active staff member of the task's store (the customer
service's roster); and what a done phase or recovery step means for what follows.

Every task is found in the caller's store (another store's is a 404, as an unknown one) and
locked for the change, so a visit and a second click never both complete it. Days are the
store's: a task is on time when done on or before its day in the store's time zone.
"""

from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_libs.principal import Principal
from crm_libs.problems import Conflict, InvalidField, NotFound
from engagement_service.care.recovery import RECOVERY_KIND, open_next_step
from engagement_service.customers.models import CustomerFile
from engagement_service.followups.methods import Method
from engagement_service.followups.models import Task
from engagement_service.followups.phases import (
    AFTER_TWO_CALLS,
    CALLED_PHASES,
    HOME_VISIT_PHASE,
    LAST_PHASE,
)
from engagement_service.followups.routine_care import move_to_routine_care


async def task_to_change(session: AsyncSession, *, principal: Principal, task_id: str) -> Task:
    """The caller's store's task, locked until the transaction ends; 404 otherwise."""
    query = select(Task).where(col(Task.id) == task_id).with_for_update()
    if (scope := principal.store_scope()) is not None:
        query = query.where(col(Task.store_id) == scope)
    task = (await session.execute(query)).scalar_one_or_none()
    if task is None:
        raise NotFound("No such task")
    return task


async def zone_of(session: AsyncSession, *, customer_id: str, default_timezone: str) -> ZoneInfo:
    """The store's time zone, as the customer's file carries it."""
    found = await session.execute(
        select(col(CustomerFile.timezone)).where(col(CustomerFile.customer_id) == customer_id)
    )
    return ZoneInfo(found.scalar_one_or_none() or default_timezone)


def _require_open(task: Task) -> None:
    if task.status != "open":
        raise Conflict(f"The task is {task.status}, not open")


# Phase 3 becomes a home visit once phases 1 and 2 of its plan were both done by phone.
_HOME_VISIT_SQL = text(
    """
    UPDATE task SET method = :home, methods_allowed = CAST(:allowed AS text[])
    WHERE plan_id = :plan AND phase = :phase AND status = 'open'
      AND (SELECT count(*) FROM task AS called
           WHERE called.plan_id = :plan AND called.phase = ANY(CAST(:called AS integer[]))
             AND called.status = 'done' AND called.done_method = :phone) = :needed
    """
)

_COMPLETE_PLAN_SQL = text(
    """
    UPDATE follow_up_plan SET status = 'completed', ended_on = :on
    WHERE id = :plan AND status = 'open'
    RETURNING store_id, customer_id
    """
)


async def mark_done(
    session: AsyncSession,
    *,
    task: Task,
    done_at: datetime,
    done_by: str | None,
    method: Method | None,
    zone: ZoneInfo,
) -> None:
    """Complete an open task, then what its phase asks of its plan."""
    _require_open(task)
    task.status = "done"
    task.done_at = done_at
    task.done_on = done_at.astimezone(zone).date()
    task.done_by = done_by
    task.done_method = method.value if method else None
    await session.flush()
    if task.kind == RECOVERY_KIND:
        await open_next_step(
            session,
            store_id=task.store_id,
            customer_id=task.customer_id,
            reason=task.recovery_reason,
            step=task.recovery_step,
            done_on=task.done_on,
            assignee_staff_id=task.assignee_staff_id,
        )
        return
    if task.plan_id is None or task.phase is None:
        return
    if task.phase in CALLED_PHASES:
        await session.execute(
            _HOME_VISIT_SQL,
            {
                "home": AFTER_TWO_CALLS[0].value,
                "allowed": [m.value for m in AFTER_TWO_CALLS],
                "plan": task.plan_id,
                "phase": HOME_VISIT_PHASE,
                "called": list(CALLED_PHASES),
                "phone": Method.PHONE.value,
                "needed": len(CALLED_PHASES),
            },
        )
    elif task.phase == LAST_PHASE:
        ended = await session.execute(
            _COMPLETE_PLAN_SQL, {"plan": task.plan_id, "on": task.done_on}
        )
        if (plan := ended.one_or_none()) is not None:
            await move_to_routine_care(
                session,
                store_id=plan.store_id,
                customer_id=plan.customer_id,
                plan_id=task.plan_id,
                since=task.done_on,
            )


async def complete(
    session: AsyncSession,
    *,
    principal: Principal,
    task_id: str,
    done_at: datetime,
    default_timezone: str,
) -> Task:
    """Mark a task done without a visit (a care message sent, a step taken in the store)."""
    task = await task_to_change(session, principal=principal, task_id=task_id)
    zone = await zone_of(session, customer_id=task.customer_id, default_timezone=default_timezone)
    await mark_done(
        session, task=task, done_at=done_at, done_by=principal.staff_id, method=None, zone=zone
    )
    return task


async def reschedule(
    session: AsyncSession,
    *,
    principal: Principal,
    task_id: str,
    due_on: date,
    reason: str,
    now: datetime,
    default_timezone: str,
) -> tuple[Task, bool]:
    """Move an open task to another day (not a past one), keeping its first day and the reason.
    Returns the task and whether it is still overdue (never: its day is today or later)."""
    task = await task_to_change(session, principal=principal, task_id=task_id)
    _require_open(task)
    zone = await zone_of(session, customer_id=task.customer_id, default_timezone=default_timezone)
    if due_on < now.astimezone(zone).date():
        raise InvalidField("due_on", "lies in the past in the store's time zone")
    if task.rescheduled_from is None:
        task.rescheduled_from = task.due_on
    task.due_on = due_on
    task.reschedule_reason = reason
    await session.flush()
    return task, False


async def reassign(
    session: AsyncSession,
    *,
    principal: Principal,
    task_id: str,
    staff_id: str,
    roster: Callable[[str], Awaitable[dict[str, Any] | None]],
    now: datetime,
    default_timezone: str,
) -> tuple[Task, bool]:
    """Give an open task to another staff member (a manager's decision; the file keeps its
    owner, whose next change of owner moves the task again). Returns it and whether overdue.

    ``roster`` reads the staff member as the caller may see them (None when unknown or out of
    reach); one unknown, of another store or no longer active is a 422. Whatever it raises
    when the roster cannot be read goes up: nothing is reassigned blind."""
    task = await task_to_change(session, principal=principal, task_id=task_id)
    _require_open(task)
    member = await roster(staff_id)
    if member is None or member.get("store_id") != task.store_id:
        raise InvalidField("staff_id", "unknown staff member for the task's store")
    if member.get("status") != "active":
        raise InvalidField("staff_id", f"the staff member is {member.get('status')}, not active")
    zone = await zone_of(session, customer_id=task.customer_id, default_timezone=default_timezone)
    task.assignee_staff_id = staff_id
    await session.flush()
    return task, task.due_on < now.astimezone(zone).date()
