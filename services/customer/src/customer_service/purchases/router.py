from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from crm_libs.db import request_connection
from crm_libs.pagination import Page, PageParams, page_of, page_params
from crm_libs.problems import problem_responses
from customer_service.config import Settings
from customer_service.deps import PrincipalDep, ReadSessionDep
from customer_service.purchases import service
from customer_service.purchases.idempotency import IdempotentWrite, idempotent
from customer_service.purchases.models import Purchase, PurchaseLine
from customer_service.purchases.schemas import PurchaseCreate, PurchaseItemPublic, PurchasePublic

router = APIRouter(tags=["purchases"])


def _public(purchase: Purchase, lines: list[PurchaseLine]) -> PurchasePublic:
    return PurchasePublic(
        id=purchase.id,
        store_id=purchase.store_id,
        customer_id=purchase.customer_id,
        staff_id=purchase.staff_id,
        member_event_id=purchase.member_event_id,
        purchased_at=purchase.purchased_at,
        total=purchase.total,
        items=[
            PurchaseItemPublic(
                sku=line.sku, qty=line.qty, unit_price=line.unit_price, amount=line.amount
            )
            for line in lines
        ],
    )


@router.post(
    "/customers/{customer_id}/purchases",
    response_model=PurchasePublic,
    status_code=201,
    summary="Record a purchase",
    responses=problem_responses(400, 401, 404, 409, 422),
)
async def record_purchase(
    customer_id: str,
    purchase_in: PurchaseCreate,
    request: Request,
    principal: PrincipalDep,
    once: Annotated[IdempotentWrite, Depends(idempotent("purchases:{customer_id}"))],
) -> Response:
    # The driver connection, not a session: the sale is three statements, and its write
    # commits before the answer is sent (with a key, the transaction around it does).
    settings: Settings = request.app.state.settings
    clock_skew = timedelta(seconds=settings.purchase_clock_skew_seconds)
    async with request_connection(request) as conn:

        async def record() -> bytes:
            sale = await service.record(
                conn,
                principal=principal,
                customer_id=customer_id,
                purchase_in=purchase_in,
                clock_skew=clock_skew,
            )
            return sale.public_json()

        return await once.respond(conn, purchase_in, record, status_code=201)


@router.get(
    "/customers/{customer_id}/purchases",
    response_model=Page[PurchasePublic],
    summary="A customer's purchases",
    responses=problem_responses(400, 401, 404, 422),
)
async def list_purchases(
    customer_id: str,
    session: ReadSessionDep,
    principal: PrincipalDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[PurchasePublic]:
    rows = await service.list_for_customer(
        session, principal=principal, customer_id=customer_id, page=page
    )
    return page_of([_public(p, lines) for p, lines in rows], page)
