from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy import select
from sqlmodel import col

from crm_libs.pagination import Page, PageParams, keyset, page_of, page_params
from crm_libs.problems import problem_responses
from customer_service.customers import service as customers
from customer_service.deps import PrincipalDep, ReadSessionDep
from customer_service.visits.models import CustomerChange
from customer_service.visits.schemas import CustomerChangePublic

router = APIRouter(prefix="/customers/{customer_id}", tags=["customers"])


@router.get(
    "/history",
    response_model=Page[CustomerChangePublic],
    summary="Changes to a file that came from visits",
    description=(
        "Each visit that carried fields for the file: which it changed, which values were "
        "refused and which fields a visit may not set, oldest first. Changes made through the "
        "API are in the audit trail (`GET /audit`)."
    ),
    responses=problem_responses(400, 401, 404, 422),
)
async def file_history(
    customer_id: str,
    session: ReadSessionDep,
    principal: PrincipalDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[CustomerChangePublic]:
    customer = await customers.get(session, principal=principal, customer_id=customer_id)
    query = keyset(
        select(CustomerChange).where(
            col(CustomerChange.store_id) == customer.store_id,
            col(CustomerChange.customer_id) == customer.id,
        ),
        col(CustomerChange.id),
        page,
        key=int,
    )
    rows = (await session.execute(query)).scalars().all()
    return page_of(
        [CustomerChangePublic.model_validate(r, from_attributes=True) for r in rows], page
    )
