from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from crm_libs.pagination import Page, PageParams, page_of, page_params
from crm_libs.problems import InvalidField, ProblemError, problem_responses
from engagement_service import customer_api
from engagement_service.deps import PrincipalDep, ReadSessionDep, SessionDep, SettingsDep
from engagement_service.followups import service, task_operations
from engagement_service.followups.models import Task
from engagement_service.followups.schemas import (
    TaskPublic,
    TaskReassign,
    TaskReschedule,
    TaskStatus,
)
from engagement_service.peer_client import PeerUnavailable
from engagement_service.worklist.schemas import WorkItem
from engagement_service.worklist.today import day_list

router = APIRouter(tags=["tasks"])


def _public(task: Task, *, overdue: bool) -> TaskPublic:
    shown = {name: getattr(task, name, None) for name in TaskPublic.model_fields}
    shown["methods_allowed"] = task.methods_allowed or [task.method]
    if overdue:
        shown["status"] = TaskStatus.OVERDUE
    shown["done_on_time"] = None if task.done_on is None else task.done_on <= task.due_on
    return TaskPublic.model_validate(shown)


@router.get(
    "/tasks",
    response_model=Page[WorkItem],
    summary="Follow-up and care tasks; the day's work list",
    description="An open task past its day in the store's time zone is shown as `overdue`; "
    "`status=open` lists those too, `status=overdue` only those. `assignee=me` lists the "
    "caller's own tasks (the account's staff member; an account that names none is a 422). "
    "`due=today` is the day's work list: open tasks due today or overdue in the store's time "
    "zone, recovery and follow-up phase tasks first, then by the customer's value tier (vip "
    "first; not yet classified last), then by due day; each with the customer's name (null "
    "when the customer service does not answer), tier and the task's reason. It takes no "
    "`customer_id`, `status` or `due_before`.",
    responses=problem_responses(400, 401, 422),
)
async def list_tasks(
    request: Request,
    session: ReadSessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    page: Annotated[PageParams, Depends(page_params)],
    staff_id: Annotated[str | None, Query(max_length=64)] = None,
    customer_id: Annotated[str | None, Query(max_length=64)] = None,
    status: TaskStatus | None = None,
    due_before: date | None = None,
    assignee: Literal["me"] | None = None,
    due: Literal["today"] | None = None,
) -> Page[TaskPublic] | Page[WorkItem]:
    if assignee == "me":
        if principal.staff_id is None:
            raise InvalidField("assignee", "this account names no staff member")
        if staff_id is not None and staff_id != principal.staff_id:
            raise InvalidField("staff_id", "differs from assignee=me")
        staff_id = principal.staff_id
    if due == "today":
        for name, value in (
            ("customer_id", customer_id),
            ("status", status),
            ("due_before", due_before),
        ):
            if value is not None:
                raise InvalidField(name, "not taken with due=today")
        return await day_list(
            session,
            request,
            principal=principal,
            page=page,
            staff_id=staff_id,
            default_timezone=settings.default_timezone,
        )
    rows = await service.list_tasks(
        session,
        principal=principal,
        page=page,
        default_timezone=settings.default_timezone,
        staff_id=staff_id,
        customer_id=customer_id,
        status=status.value if status else None,
        due_before=due_before,
    )
    return page_of([_public(task, overdue=overdue) for task, overdue in rows], page)


@router.post(
    "/tasks/{task_id}/complete",
    response_model=TaskPublic,
    summary="Mark a task done without a visit",
    description="For work a visit does not record (a care message sent). A visit that does the "
    "task completes it itself (`POST /visits` with `task_id`). Done on or before its day in "
    "the store's time zone is on time.",
    responses=problem_responses(400, 401, 404, 409),
)
async def complete_task(
    task_id: str, session: SessionDep, principal: PrincipalDep, settings: SettingsDep
) -> TaskPublic:
    task = await task_operations.complete(
        session,
        principal=principal,
        task_id=task_id,
        done_at=datetime.now(UTC),
        default_timezone=settings.default_timezone,
    )
    return _public(task, overdue=False)


@router.post(
    "/tasks/{task_id}/reschedule",
    response_model=TaskPublic,
    summary="Move an open task to another day, with the reason",
    responses=problem_responses(400, 401, 404, 409, 422),
)
async def reschedule_task(
    task_id: str,
    change: TaskReschedule,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> TaskPublic:
    task, overdue = await task_operations.reschedule(
        session,
        principal=principal,
        task_id=task_id,
        due_on=change.due_on,
        reason=change.reason,
        now=datetime.now(UTC),
        default_timezone=settings.default_timezone,
    )
    return _public(task, overdue=overdue)


@router.post(
    "/tasks/{task_id}/reassign",
    response_model=TaskPublic,
    summary="Give an open task to another staff member (managers)",
    description="The file keeps its owner: the owner's next change moves the task again. "
    "`staff_id` must be an active staff member of the task's store on the customer service's "
    "roster (a 422 otherwise); a 503 when the roster cannot be read.",
    responses=problem_responses(400, 401, 404, 409, 422, 503),
)
async def reassign_task(
    task_id: str,
    change: TaskReassign,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> TaskPublic:
    async def roster(staff_id: str) -> dict[str, Any] | None:
        return await customer_api.staff_member(request, staff_id)

    try:
        task, overdue = await task_operations.reassign(
            session,
            principal=principal,
            task_id=task_id,
            staff_id=change.staff_id,
            roster=roster,
            now=datetime.now(UTC),
            default_timezone=settings.default_timezone,
        )
    except PeerUnavailable as exc:
        raise ProblemError("The staff roster is unavailable", status=503) from exc
    return _public(task, overdue=overdue)
