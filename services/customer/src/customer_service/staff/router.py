from typing import Annotated

from fastapi import APIRouter, Depends, Query

from crm_libs.pagination import Page, PageParams, page_of, page_params
from crm_libs.problems import problem_responses
from customer_service.deps import PrincipalDep, ReadSessionDep, SessionDep
from customer_service.staff import service
from customer_service.staff.schemas import StaffCreate, StaffPublic, StaffUpdate

router = APIRouter(prefix="/staff", tags=["staff"])


@router.post(
    "",
    response_model=StaffPublic,
    status_code=201,
    summary="Add a staff member to a roster",
    responses=problem_responses(400, 401, 403, 422),
)
async def create_staff(
    staff_in: StaffCreate, session: SessionDep, principal: PrincipalDep
) -> StaffPublic:
    staff = await service.create(session, principal=principal, staff_in=staff_in)
    return StaffPublic.model_validate(staff, from_attributes=True)


@router.get(
    "",
    response_model=Page[StaffPublic],
    summary="The roster",
    responses=problem_responses(400, 401, 422),
)
async def list_staff(
    session: ReadSessionDep,
    principal: PrincipalDep,
    page: Annotated[PageParams, Depends(page_params)],
    store_id: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[StaffPublic]:
    rows = await service.list_visible(session, principal=principal, store_id=store_id, page=page)
    return page_of([StaffPublic.model_validate(r, from_attributes=True) for r in rows], page)


@router.get(
    "/{staff_id}",
    response_model=StaffPublic,
    summary="One staff member",
    responses=problem_responses(401, 404),
)
async def get_staff(staff_id: str, session: ReadSessionDep, principal: PrincipalDep) -> StaffPublic:
    staff = await service.get(session, principal=principal, staff_id=staff_id)
    return StaffPublic.model_validate(staff, from_attributes=True)


@router.patch(
    "/{staff_id}",
    response_model=StaffPublic,
    summary="Change a staff member",
    responses=problem_responses(400, 401, 404, 422),
)
async def update_staff(
    staff_id: str, staff_in: StaffUpdate, session: SessionDep, principal: PrincipalDep
) -> StaffPublic:
    staff = await service.update(session, principal=principal, staff_id=staff_id, staff_in=staff_in)
    return StaffPublic.model_validate(staff, from_attributes=True)
