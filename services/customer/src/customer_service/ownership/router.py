from typing import Annotated

from fastapi import APIRouter, Depends

from crm_libs.pagination import Page, PageParams, page_of, page_params
from crm_libs.problems import problem_responses
from customer_service.deps import PrincipalDep, ReadSessionDep, SessionDep
from customer_service.ownership import pool, service
from customer_service.ownership.schemas import (
    DepartureCreate,
    DeparturePublic,
    OwnershipPublic,
    PoolAssignmentCreate,
    PoolAssignmentPublic,
    PoolFilePublic,
    TakeBackCreate,
    TakeBackPublic,
    TransferCreate,
)

router = APIRouter(tags=["ownership"])


@router.get(
    "/customers/{customer_id}/ownership",
    response_model=OwnershipPublic,
    summary="A file's owner and every change of owner, with its reason and who made it",
    responses=problem_responses(401, 403, 404),
)
async def get_ownership(
    customer_id: str, session: ReadSessionDep, principal: PrincipalDep
) -> OwnershipPublic:
    found = await service.ownership_of(session, principal=principal, customer_id=customer_id)
    return OwnershipPublic.model_validate(found)


@router.post(
    "/customers/{customer_id}/transfer",
    response_model=OwnershipPublic,
    status_code=200,
    summary="Give a file to another representative at the customer's request",
    responses=problem_responses(400, 401, 403, 404, 409, 422),
)
async def transfer(
    customer_id: str, transfer_in: TransferCreate, session: SessionDep, principal: PrincipalDep
) -> OwnershipPublic:
    await service.transfer(
        session,
        principal=principal,
        customer_id=customer_id,
        to_staff_id=transfer_in.to_staff_id,
        reason=transfer_in.reason,
    )
    await session.flush()
    found = await service.ownership_of(session, principal=principal, customer_id=customer_id)
    return OwnershipPublic.model_validate(found)


@router.post(
    "/staff/{staff_id}/departure",
    response_model=DeparturePublic,
    status_code=200,
    summary="A staff member leaves, moves or went quiet: their files go to recent sellers or "
    "the pool",
    responses=problem_responses(400, 401, 403, 404, 422),
)
async def depart(
    staff_id: str, departure_in: DepartureCreate, session: SessionDep, principal: PrincipalDep
) -> DeparturePublic:
    departed = await service.depart(
        session,
        principal=principal,
        staff_id=staff_id,
        reason=departure_in.reason.value,
        note=departure_in.note,
    )
    return DeparturePublic(reassigned=departed.reassigned, to_pool=departed.to_pool)


@router.get(
    "/stores/{store_id}/pool",
    response_model=Page[PoolFilePublic],
    summary="The store's orphan files waiting for an owner",
    responses=problem_responses(400, 401, 403, 404, 422),
)
async def list_pool(
    store_id: str,
    session: ReadSessionDep,
    principal: PrincipalDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[PoolFilePublic]:
    rows = await pool.list_pool(session, principal=principal, store_id=store_id, page=page)
    return page_of([PoolFilePublic.model_validate(r) for r in rows], page, id_of="customer_id")


@router.post(
    "/stores/{store_id}/pool/assignments",
    response_model=PoolAssignmentPublic,
    status_code=200,
    summary="Give pool files to a staff member who may receive them (409 names the rule)",
    responses=problem_responses(400, 401, 403, 404, 409, 422),
)
async def assign(
    store_id: str,
    assignment_in: PoolAssignmentCreate,
    session: SessionDep,
    principal: PrincipalDep,
) -> PoolAssignmentPublic:
    assigned = await pool.assign(
        session,
        principal=principal,
        store_id=store_id,
        staff_id=assignment_in.staff_id,
        customer_ids=assignment_in.customer_ids,
        manager_approval=assignment_in.manager_approval,
    )
    return PoolAssignmentPublic(staff_id=assignment_in.staff_id, assigned=assigned)


@router.post(
    "/stores/{store_id}/pool/take-backs",
    response_model=TakeBackPublic,
    status_code=200,
    summary="The yearly take-back of pool files that did not buy again (409 names the rule)",
    responses=problem_responses(400, 401, 403, 404, 409, 422),
)
async def take_back(
    store_id: str, take_back_in: TakeBackCreate, session: SessionDep, principal: PrincipalDep
) -> TakeBackPublic:
    taken = await pool.take_back(
        session, principal=principal, store_id=store_id, staff_id=take_back_in.staff_id
    )
    return TakeBackPublic(
        staff_id=take_back_in.staff_id,
        received=taken.received,
        bought_again=taken.bought_again,
        taken_back=taken.taken_back,
    )
