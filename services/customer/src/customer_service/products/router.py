from typing import Annotated

from fastapi import APIRouter, Depends, Query

from crm_libs.pagination import Page, PageParams, page_of, page_params
from crm_libs.problems import problem_responses
from customer_service.deps import PrincipalDep, ReadSessionDep, SessionDep
from customer_service.products import service
from customer_service.products.schemas import ProductCreate, ProductPublic

router = APIRouter(prefix="/products", tags=["products"])


@router.post(
    "",
    response_model=ProductPublic,
    status_code=201,
    summary="Add a product to the catalogue",
    responses=problem_responses(400, 401, 403, 409, 422),
)
async def create_product(
    product_in: ProductCreate, session: SessionDep, principal: PrincipalDep
) -> ProductPublic:
    product = await service.create(session, principal=principal, product_in=product_in)
    return ProductPublic.model_validate(product, from_attributes=True)


@router.get(
    "",
    response_model=Page[ProductPublic],
    summary="The catalogue",
    responses=problem_responses(400, 401, 422),
)
async def list_products(
    session: ReadSessionDep,
    principal: PrincipalDep,
    page: Annotated[PageParams, Depends(page_params)],
    category: Annotated[str | None, Query(max_length=100)] = None,
) -> Page[ProductPublic]:
    rows = await service.list_page(session, page=page, category=category)
    return page_of([ProductPublic.model_validate(r, from_attributes=True) for r in rows], page)
