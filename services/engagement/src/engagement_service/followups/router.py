from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from crm_libs.pagination import Page, PageParams, page_of, page_params
from crm_libs.problems import problem_responses
from engagement_service.deps import PrincipalDep, ReadSessionDep, SessionDep, SettingsDep
from engagement_service.followups import service, task_operations
from engagement_service.followups.models import Task
from engagement_service.followups.schemas import (
    TaskPublic,
    TaskReassign,
    TaskReschedule,
    TaskStatus,
)

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
    response_model=Page[TaskPublic],
    summary="Follow-up and care tasks",
    description="An open task past its day in the store's time zone is shown as `overdue`; "
    "`status=open` lists those too, `status=overdue` only those.",
    responses=problem_responses(400, 401, 422),
)
async def list_tasks(
    session: ReadSessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    page: Annotated[PageParams, Depends(page_params)],
    staff_id: Annotated[str | None, Query(max_length=64)] = None,
    customer_id: Annotated[str | None, Query(max_length=64)] = None,
    status: TaskStatus | None = None,
    due_before: date | None = None,
) -> Page[TaskPublic]:
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
    description="The file keeps its owner: the owner's next change moves the task again.",
    responses=problem_responses(400, 401, 404, 409, 422),
)
async def reassign_task(
    task_id: str,
    change: TaskReassign,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> TaskPublic:
    task, overdue = await task_operations.reassign(
        session,
        principal=principal,
        task_id=task_id,
        staff_id=change.staff_id,
        now=datetime.now(UTC),
        default_timezone=settings.default_timezone,
    )
    return _public(task, overdue=overdue)
