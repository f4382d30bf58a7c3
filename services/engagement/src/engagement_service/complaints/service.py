"""Complaints as the store's people handle them (DOMAIN.md §7): opened with the points heard,
stepped through in order (complaints/steps.py), a second follow-up task when the customer is
not satisfied, and the category kept as the customer's stop reason (care/stop_reasons.py).

Each complaint is found in the caller's store (another store's is a 404, as an unknown one)
and locked for a step, so two clicks never both take it. Days are the store's, from the file.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_libs.pagination import PageParams, keyset
from crm_libs.principal import Principal
from crm_libs.problems import Conflict, NotFound
from engagement_service.care.stop_reasons import (
    COMPLAINT_REASONS,
    Signal,
    SignalSource,
    record_stop_signals,
)
from engagement_service.complaints.models import Complaint, ComplaintStep
from engagement_service.complaints.schemas import (
    ComplaintCreate,
    ComplaintStatus,
    FeedbackStep,
    ResolveStep,
    StepTaken,
)
from engagement_service.complaints.steps import FIRST, Step, after, on_the_spot
from engagement_service.customers.active_file import active_file
from engagement_service.customers.models import CustomerFile
from engagement_service.followups.methods import Method
from engagement_service.followups.models import Task
from engagement_service.followups.task_operations import mark_done, zone_of

Q = TypeVar("Q", bound=Select[Any])

COMPLAINT_KIND = "complaint"
# The follow-up of an unsatisfied customer: best in person; the expert may call about a product.
FOLLOW_UP_METHODS = (Method.HOME, Method.PHONE, Method.EXPERT_PHONE)


@dataclass(frozen=True)
class ComplaintRecord:
    complaint: Complaint
    steps: list[ComplaintStep]


async def open_complaint(
    session: AsyncSession,
    *,
    principal: Principal,
    complaint_in: ComplaintCreate,
    now: datetime,
    default_timezone: str,
) -> ComplaintRecord:
    """Record a complaint about a file of the caller's store, waiting to be listened to."""
    file = await active_file(
        session,
        principal=principal,
        customer_id=complaint_in.customer_id,
        instead="record the complaint there",
    )
    complaint = Complaint(
        store_id=file.store_id,
        customer_id=file.customer_id,
        category=complaint_in.category.value,
        points=complaint_in.points,
        status=ComplaintStatus.OPEN.value,
        next_step=FIRST.value,
        round=1,
        opened_at=now,
        opened_on=now.astimezone(ZoneInfo(file.timezone or default_timezone)).date(),
        opened_by=principal.subject,
        opened_by_staff_id=principal.staff_id,
    )
    session.add(complaint)
    await session.flush()
    if (reason := COMPLAINT_REASONS.get(complaint.category)) is not None:
        signal = Signal(
            store_id=complaint.store_id,
            customer_id=complaint.customer_id,
            reason=reason,
            source=SignalSource.COMPLAINT,
            source_reason=complaint.category,
            source_id=complaint.id,
            seen_at=now,
        )
        await record_stop_signals(session, signals=[signal])
    return ComplaintRecord(complaint, [])


async def take_step(
    session: AsyncSession,
    *,
    principal: Principal,
    complaint_id: str,
    step_in: StepTaken,
    now: datetime,
    default_timezone: str,
    follow_up_days: int,
) -> ComplaintRecord:
    """Record the step the complaint waits for: 409 naming that step for any other, or when
    the complaint is closed."""
    complaint = await _complaint_to_step(session, principal=principal, complaint_id=complaint_id)
    step = Step(step_in.step)
    if complaint.next_step is None:
        raise Conflict("The complaint is closed: it takes no more steps")
    if step.value != complaint.next_step:
        raise Conflict(
            f"The complaint's next step is {complaint.next_step}, not {step.value}",
            errors=[{"field": "step", "message": f"expected {complaint.next_step}"}],
        )
    taken = ComplaintStep(
        complaint_id=complaint.id,
        store_id=complaint.store_id,
        round=complaint.round,
        step=step.value,
        taken_at=now,
        taken_by=principal.subject,
        staff_id=principal.staff_id,
        notes=step_in.notes,
    )
    if isinstance(step_in, ResolveStep):
        taken.cause = step_in.cause
        taken.solution = step_in.solution
        taken.compensation = step_in.compensation
        taken.compensation_note = step_in.compensation_note
    satisfied = step_in.satisfied if isinstance(step_in, FeedbackStep) else None
    taken.satisfied = satisfied
    session.add(taken)
    zone = await zone_of(
        session, customer_id=complaint.customer_id, default_timezone=default_timezone
    )
    if step is Step.FEEDBACK:
        await _finish_follow_up(session, complaint=complaint, taken=taken, zone=zone)
    following = after(step, satisfied=satisfied)
    complaint.next_step = following.value if following else None
    if following is None:
        complaint.status = ComplaintStatus.CLOSED.value
        complaint.closed_at = now
        complaint.closed_on = now.astimezone(zone).date()
        complaint.resolved_on_the_spot = on_the_spot(
            round_closed=complaint.round,
            opened_on=complaint.opened_on,
            closed_on=complaint.closed_on,
        )
    elif step is Step.FEEDBACK:
        complaint.round += 1
        complaint.follow_up_task_id = await _second_follow_up(
            session, complaint=complaint, taken=taken, zone=zone, within_days=follow_up_days
        )
    await session.flush()
    return ComplaintRecord(complaint, await _steps_of(session, [complaint.id]))


async def _finish_follow_up(
    session: AsyncSession, *, complaint: Complaint, taken: ComplaintStep, zone: ZoneInfo
) -> None:
    """The customer's answer in a later round is the follow-up done, unless a visit did it."""
    if complaint.follow_up_task_id is None:
        return
    task = (
        await session.execute(
            select(Task).where(col(Task.id) == complaint.follow_up_task_id).with_for_update()
        )
    ).scalar_one_or_none()
    if task is not None and task.status == "open":
        await mark_done(
            session,
            task=task,
            done_at=taken.taken_at,
            done_by=taken.staff_id,
            method=None,
            zone=zone,
        )


async def _second_follow_up(
    session: AsyncSession,
    *,
    complaint: Complaint,
    taken: ComplaintStep,
    zone: ZoneInfo,
    within_days: int,
) -> str:
    """A follow-up task on the owner's list (the staff member who heard the answer when the
    file has none), due ``within_days`` store-local days after the unsatisfied answer."""
    owner = (
        await session.execute(
            select(col(CustomerFile.owner_staff_id)).where(
                col(CustomerFile.customer_id) == complaint.customer_id
            )
        )
    ).scalar_one_or_none()
    task = Task(
        store_id=complaint.store_id,
        customer_id=complaint.customer_id,
        kind=COMPLAINT_KIND,
        due_on=taken.taken_at.astimezone(zone).date() + timedelta(days=within_days),
        method=FOLLOW_UP_METHODS[0].value,
        methods_allowed=[m.value for m in FOLLOW_UP_METHODS],
        # No words of the customer's here: the complaint holds them (a task's purpose is shown
        # on every work list).
        purpose=f"follow up complaint {complaint.id} ({complaint.category}): the customer was "
        "not satisfied; agree a new solution and ask again",
        status="open",
        assignee_staff_id=owner or taken.staff_id,
    )
    session.add(task)
    await session.flush()
    return task.id


async def get_complaint(
    session: AsyncSession, *, principal: Principal, complaint_id: str
) -> ComplaintRecord:
    """A complaint of the caller's store with its steps; 404 otherwise."""
    query = select(Complaint).where(col(Complaint.id) == complaint_id)
    complaint = (await session.execute(_scoped(query, principal))).scalar_one_or_none()
    if complaint is None:
        raise NotFound("No such complaint")
    return ComplaintRecord(complaint, await _steps_of(session, [complaint.id]))


async def list_complaints(
    session: AsyncSession,
    *,
    principal: Principal,
    page: PageParams,
    customer_id: str | None = None,
    status: ComplaintStatus | None = None,
) -> list[ComplaintRecord]:
    """A page of the caller's store's complaints with their steps, oldest first."""
    query = _scoped(keyset(select(Complaint), col(Complaint.id), page), principal)
    if customer_id:
        query = query.where(col(Complaint.customer_id) == customer_id)
    if status is not None:
        query = query.where(col(Complaint.status) == status.value)
    complaints = list((await session.execute(query)).scalars())
    steps = await _steps_of(session, [c.id for c in complaints])
    return [ComplaintRecord(c, [s for s in steps if s.complaint_id == c.id]) for c in complaints]


def _scoped(query: Q, principal: Principal) -> Q:
    if (scope := principal.store_scope()) is not None:
        return query.where(col(Complaint.store_id) == scope)
    return query


async def _steps_of(session: AsyncSession, complaint_ids: list[str]) -> list[ComplaintStep]:
    if not complaint_ids:
        return []
    found = await session.execute(
        select(ComplaintStep)
        .where(col(ComplaintStep.complaint_id).in_(complaint_ids))
        .order_by(col(ComplaintStep.taken_at), col(ComplaintStep.id))
    )
    return list(found.scalars())


async def _complaint_to_step(
    session: AsyncSession, *, principal: Principal, complaint_id: str
) -> Complaint:
    query = select(Complaint).where(col(Complaint.id) == complaint_id).with_for_update()
    complaint = (await session.execute(_scoped(query, principal))).scalar_one_or_none()
    if complaint is None:
        raise NotFound("No such complaint")
    return complaint
