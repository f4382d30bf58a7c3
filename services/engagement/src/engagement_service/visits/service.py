"""Visits and calls as staff log them: stored, completing the task they do, scheduling their
next step, and announced as ``visit.recorded`` for the customer file, all in one transaction."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_libs.events.envelope import Topics
from crm_libs.events.outbox import enqueue
from crm_libs.pagination import PageParams, keyset
from crm_libs.principal import Principal, Role
from crm_libs.problems import InvalidField
from engagement_service.care.stop_reasons import (
    VISIT_REASONS,
    Signal,
    SignalSource,
    record_stop_signals,
)
from engagement_service.customers.active_file import active_file
from engagement_service.customers.models import CustomerFile
from engagement_service.followups.models import Task
from engagement_service.followups.service import FOLLOW_UP
from engagement_service.followups.task_operations import mark_done
from engagement_service.visits.events import visit_recorded
from engagement_service.visits.models import Visit
from engagement_service.visits.schemas import VisitCreate

# Roles whose account names the staff member they are: they log their own visits only.
_OWN_VISITS_ONLY = frozenset({Role.STAFF, Role.EXPERT})


async def record_visit(
    session: AsyncSession,
    *,
    principal: Principal,
    visit_in: VisitCreate,
    now: datetime,
    clock_skew: timedelta,
    default_timezone: str,
) -> Visit:
    """Store a visit to a file of the caller's store, done by its task if it names one."""
    file = await active_file(
        session,
        principal=principal,
        customer_id=visit_in.customer_id,
        instead="log the visit there",
    )
    staff_id = visit_in.staff_id or principal.staff_id
    if (
        principal.role in _OWN_VISITS_ONLY
        and principal.staff_id is not None
        and staff_id != principal.staff_id
    ):
        raise InvalidField("staff_id", "a staff member logs their own visits")
    if visit_in.occurred_at > now + clock_skew:
        raise InvalidField("occurred_at", "lies in the future")
    zone = ZoneInfo(file.timezone or default_timezone)
    visit = Visit(
        store_id=file.store_id,
        customer_id=file.customer_id,
        staff_id=staff_id,
        method=visit_in.method.value,
        occurred_at=visit_in.occurred_at,
        outcome=visit_in.outcome,
        notes=visit_in.notes,
        satisfaction=visit_in.satisfaction,
        task_id=visit_in.task_id,
        collected=visit_in.collected,
        next_step=visit_in.next_step.note if visit_in.next_step else None,
        stop_reason=visit_in.stop_reason.value if visit_in.stop_reason else None,
        recorded_by=principal.subject,
    )
    if visit_in.task_id is not None:
        task = await _task_of(session, file=file, task_id=visit_in.task_id)
        await mark_done(
            session,
            task=task,
            done_at=visit_in.occurred_at,
            done_by=staff_id,
            method=visit_in.method,
            zone=zone,
        )
    step = visit_in.next_step
    if step is not None and step.due_on is not None:
        if step.due_on < visit_in.occurred_at.astimezone(zone).date():
            raise InvalidField("next_step.due_on", "lies before the visit")
        method = step.method or visit_in.method
        next_task = Task(
            store_id=file.store_id,
            customer_id=file.customer_id,
            kind=FOLLOW_UP,
            due_on=step.due_on,
            method=method.value,
            methods_allowed=[method.value],
            purpose=step.note,
            status="open",
            assignee_staff_id=file.owner_staff_id or staff_id,
        )
        session.add(next_task)
        visit.next_task_id = next_task.id
    session.add(visit)
    await session.flush()
    if visit.stop_reason is not None and (reason := VISIT_REASONS.get(visit.stop_reason)):
        # As of when the visit happened: a refund or complaint after it is newer.
        signal = Signal(
            store_id=visit.store_id,
            customer_id=visit.customer_id,
            reason=reason,
            source=SignalSource.VISIT,
            source_reason=visit.stop_reason,
            source_id=visit.id,
            seen_at=visit.occurred_at,
        )
        await record_stop_signals(session, signals=[signal])
    enqueue(session, topic=Topics.ENGAGEMENT, event=visit_recorded(visit))
    return visit


async def _task_of(session: AsyncSession, *, file: CustomerFile, task_id: str) -> Task:
    """The visited customer's task, locked for completion: 422 if it is not theirs."""
    task = (
        await session.execute(
            select(Task)
            .where(col(Task.id) == task_id, col(Task.store_id) == file.store_id)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if task is None or task.customer_id != file.customer_id:
        raise InvalidField("task_id", "not a task of this customer")
    return task


async def list_visits(
    session: AsyncSession,
    *,
    principal: Principal,
    page: PageParams,
    customer_id: str | None = None,
    staff_id: str | None = None,
) -> list[Visit]:
    """A page of the caller's store's visits, oldest first."""
    query = keyset(select(Visit), col(Visit.id), page)
    if (scope := principal.store_scope()) is not None:
        query = query.where(col(Visit.store_id) == scope)
    if customer_id:
        query = query.where(col(Visit.customer_id) == customer_id)
    if staff_id:
        query = query.where(col(Visit.staff_id) == staff_id)
    return list((await session.execute(query)).scalars())
