from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from crm_libs.pagination import Page, PageParams, page_of, page_params
from crm_libs.problems import problem_responses
from customer_service.customers import service
from customer_service.customers.schemas import CustomerCreate, CustomerPublic
from customer_service.deps import PrincipalDep, SessionDep

router = APIRouter(prefix="/customers", tags=["customers"])


@router.post(
    "",
    response_model=CustomerPublic,
    status_code=201,
    summary="Open a customer file",
    responses=problem_responses(400, 401, 422),
)
async def create_customer(
    customer_in: CustomerCreate, session: SessionDep, principal: PrincipalDep
) -> CustomerPublic:
    customer = await service.register(session, principal=principal, customer_in=customer_in)
    return CustomerPublic.model_validate(customer, from_attributes=True)


@router.get(
    "",
    response_model=Page[CustomerPublic],
    summary="Search customer files",
    responses=problem_responses(400, 401, 422),
)
async def list_customers(
    session: SessionDep,
    principal: PrincipalDep,
    page: Annotated[PageParams, Depends(page_params)],
    store_id: Annotated[str | None, Query(max_length=64)] = None,
    q: Annotated[str | None, Query(max_length=100, description="name part or phone tail")] = None,
) -> Page[CustomerPublic]:
    rows = await service.search(session, principal=principal, store_id=store_id, q=q, page=page)
    return page_of([CustomerPublic.model_validate(r, from_attributes=True) for r in rows], page)


@router.get(
    "/{customer_id}",
    response_model=CustomerPublic,
    summary="One customer file",
    responses=problem_responses(401, 404),
)
async def get_customer(
    customer_id: str, session: SessionDep, principal: PrincipalDep, response: Response
) -> CustomerPublic:
    customer = await service.get(session, principal=principal, customer_id=customer_id)
    response.headers["ETag"] = f'"{customer.version}"'
    return CustomerPublic.model_validate(customer, from_attributes=True)
