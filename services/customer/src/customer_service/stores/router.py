from typing import Annotated

from fastapi import APIRouter, Depends

from crm_libs.pagination import Page, PageParams, page_of, page_params
from crm_libs.problems import problem_responses
from customer_service.deps import PrincipalDep, ReadSessionDep, SessionDep
from customer_service.stores import service
from customer_service.stores.schemas import StoreCreate, StorePublic

router = APIRouter(prefix="/stores", tags=["stores"])


@router.post(
    "",
    response_model=StorePublic,
    status_code=201,
    summary="Open a store",
    responses=problem_responses(400, 401, 403, 409, 422),
)
async def create_store(
    store_in: StoreCreate, session: SessionDep, principal: PrincipalDep
) -> StorePublic:
    store = await service.create(session, principal=principal, store_in=store_in)
    return StorePublic.model_validate(store, from_attributes=True)


@router.get(
    "",
    response_model=Page[StorePublic],
    summary="List the stores the caller can see",
    responses=problem_responses(400, 401, 422),
)
async def list_stores(
    session: ReadSessionDep,
    principal: PrincipalDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[StorePublic]:
    rows = await service.list_visible(session, principal=principal, page=page)
    return page_of([StorePublic.model_validate(r, from_attributes=True) for r in rows], page)


@router.get(
    "/{store_id}",
    response_model=StorePublic,
    summary="One store",
    responses=problem_responses(401, 404),
)
async def get_store(store_id: str, session: ReadSessionDep, principal: PrincipalDep) -> StorePublic:
    store = await service.get(session, principal=principal, store_id=store_id)
    return StorePublic.model_validate(store, from_attributes=True)
