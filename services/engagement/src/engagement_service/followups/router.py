from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from crm_libs.pagination import Page, PageParams, page_of, page_params
from crm_libs.problems import problem_responses
from engagement_service.deps import PrincipalDep, ReadSessionDep
from engagement_service.followups import service
from engagement_service.followups.schemas import TaskPublic, TaskStatus

router = APIRouter(tags=["tasks"])


@router.get(
    "/tasks",
    response_model=Page[TaskPublic],
    summary="Follow-up and care tasks",
    responses=problem_responses(400, 401, 422),
)
async def list_tasks(
    session: ReadSessionDep,
    principal: PrincipalDep,
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
        staff_id=staff_id,
        customer_id=customer_id,
        status=status.value if status else None,
        due_before=due_before,
    )
    return page_of([TaskPublic.model_validate(r, from_attributes=True) for r in rows], page)
