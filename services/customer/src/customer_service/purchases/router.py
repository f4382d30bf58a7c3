from datetime import timedelta
from decimal import Decimal
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response

from crm_libs.db import request_connection
from crm_libs.field_crypto import FieldCipher
from crm_libs.pagination import Page, PageParams, page_of, page_params
from crm_libs.principal import Principal
from crm_libs.problems import PROBLEM_JSON, problem_responses
from customer_service import audit_trail
from customer_service.config import Settings
from customer_service.deps import CipherDep, PrincipalDep, ReadSessionDep
from customer_service.purchases import contraindications, refunds, service, warnings
from customer_service.purchases.idempotency import IdempotentWrite, idempotent
from customer_service.purchases.models import Purchase, PurchaseLine
from customer_service.purchases.schemas import (
    AcknowledgementPublic,
    PurchaseCreate,
    PurchaseItemPublic,
    PurchasePublic,
    RefundCreate,
    RefundPublic,
    WarningsPublic,
)

router = APIRouter(tags=["purchases"])


def _acknowledgement(
    purchase: Purchase, principal: Principal, cipher: FieldCipher
) -> AcknowledgementPublic | None:
    if purchase.acknowledged_at is None or purchase.acknowledged_by is None:
        return None
    found = (
        contraindications.unsealed(purchase.acknowledged_warnings_encrypted, cipher)
        if purchase.acknowledged_warnings_encrypted
        else []
    )
    return AcknowledgementPublic.model_validate(
        {
            "by": purchase.acknowledged_by,
            "at": purchase.acknowledged_at,
            "warnings": contraindications.shown_to(principal.role, found),
        }
    )


def _public(
    purchase: Purchase,
    lines: list[PurchaseLine],
    refunded: service.Refunded,
    principal: Principal,
    cipher: FieldCipher,
) -> PurchasePublic:
    items = []
    for line in lines:
        qty, amount = refunded.get(line.id or 0, (0, Decimal("0.00")))
        items.append(
            PurchaseItemPublic(
                sku=line.sku,
                qty=line.qty,
                unit_price=line.unit_price,
                amount=line.amount,
                refunded_qty=qty,
                refunded_amount=amount,
            )
        )
    return PurchasePublic(
        id=purchase.id,
        store_id=purchase.store_id,
        customer_id=purchase.customer_id,
        staff_id=purchase.staff_id,
        member_event_id=purchase.member_event_id,
        purchased_at=purchase.purchased_at,
        total=purchase.total,
        items=items,
        refunded_total=sum((i.refunded_amount for i in items), Decimal("0.00")),
        acknowledgement=_acknowledgement(purchase, principal, cipher),
    )


def _warnings_found(
    found: contraindications.WarningsFound, principal: Principal, customer_id: str
) -> Response:
    """409 problem+json naming the warnings as the caller's role may be told them."""
    body = {
        "type": "about:blank",
        "title": found.title,
        "status": found.status,
        "detail": found.detail
        if contraindications.discloses_health(principal.role)
        else found.detail + " (what matched is for the store manager or the expert to see)",
        "warnings": contraindications.shown_to(principal.role, found.warnings),
    }
    response = Response(orjson.dumps(body), status_code=found.status, media_type=PROBLEM_JSON)
    _note_health_read(response, principal, customer_id)
    return response


def _note_health_read(response: Response, principal: Principal, customer_id: str) -> None:
    if contraindications.discloses_health(principal.role):
        audit_trail.note(
            response,
            action="read",
            resource=f"customer/{customer_id}/warnings",
            customer_id=customer_id,
            fields=["health"],
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
    cipher: FieldCipher = request.app.state.cipher
    clock_skew = timedelta(seconds=settings.purchase_clock_skew_seconds)
    recorded: list[service.Sale] = []
    async with request_connection(request) as conn:

        async def record() -> bytes:
            sale = await service.record(
                conn,
                principal=principal,
                customer_id=customer_id,
                purchase_in=purchase_in,
                cipher=cipher,
                clock_skew=clock_skew,
            )
            recorded.append(sale)
            return sale.public_json()

        try:
            response = await once.respond(conn, purchase_in, record, status_code=201)
        except contraindications.WarningsFound as found:
            return _warnings_found(found, principal, customer_id)
    if recorded and recorded[0].acknowledged:
        # The products and kinds, not the words: those stay encrypted on the purchase.
        sale = recorded[0]
        audit_trail.note(
            response,
            action="acknowledge_warnings",
            resource=f"purchase/{sale.id}",
            customer_id=customer_id,
            fields=sorted({f"{w.sku}:{w.kind}" for w in sale.acknowledged}),
        )
    return response


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
    cipher: CipherDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[PurchasePublic]:
    rows = await service.list_for_customer(
        session, principal=principal, customer_id=customer_id, page=page
    )
    return page_of(
        [_public(p, lines, refunded, principal, cipher) for p, lines, refunded in rows], page
    )


@router.get(
    "/customers/{customer_id}/warnings",
    response_model=WarningsPublic,
    summary="What proposed products meet in the customer's health file",
    responses=problem_responses(400, 401, 404, 422),
)
async def proposal_warnings(
    customer_id: str,
    request: Request,
    principal: PrincipalDep,
    sku: Annotated[list[str] | None, Query(description="A proposed product; repeatable")] = None,
) -> Response:
    async with request_connection(request) as conn:
        found, consulted = await warnings.for_proposal(
            conn,
            principal=principal,
            customer_id=customer_id,
            skus=sku or [],
            cipher=request.app.state.cipher,
        )
    body = {"warnings": contraindications.shown_to(principal.role, found)}
    response = Response(orjson.dumps(body), media_type="application/json")
    if consulted:
        _note_health_read(response, principal, customer_id)
    return response


@router.post(
    "/purchases/{purchase_id}/refund",
    response_model=RefundPublic,
    status_code=201,
    summary="Refund a purchase, whole or by product",
    responses=problem_responses(400, 401, 403, 404, 409, 422),
)
async def refund_purchase(
    purchase_id: str,
    refund_in: RefundCreate,
    request: Request,
    principal: PrincipalDep,
    once: Annotated[IdempotentWrite, Depends(idempotent("refund:{purchase_id}"))],
) -> Response:
    async with request_connection(request) as conn:

        async def write() -> bytes:
            refund = await refunds.refund(
                conn, principal=principal, purchase_id=purchase_id, refund_in=refund_in
            )
            return refund.public_json()

        return await once.respond(conn, refund_in, write, status_code=201)
