from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel

from crm_libs.db import request_connection
from crm_libs.pagination import Page, PageParams, next_cursor, page_params
from crm_libs.problems import problem_responses
from customer_service.deps import PrincipalDep, ReadSessionDep, SessionDep
from customer_service.membership import ledger, rules
from customer_service.membership.schemas import (
    MembershipPublic,
    MembershipRulesIn,
    MembershipRulesPublic,
    PointsEntryPublic,
    PointsExpiring,
    RedemptionCreate,
)
from customer_service.purchases.idempotency import IdempotentWrite, idempotent

router = APIRouter(tags=["membership"])


class RedemptionPublic(BaseModel):
    id: str
    customer_id: str
    points: int
    gift: str
    balance_after: int


@router.get(
    "/stores/{store_id}/membership-rules",
    response_model=MembershipRulesPublic,
    summary="A store's membership rules (the defaults until it saves its own)",
    responses=problem_responses(401, 404),
)
async def get_rules(
    store_id: str, session: ReadSessionDep, principal: PrincipalDep
) -> MembershipRulesPublic:
    return await rules.get(session, principal=principal, store_id=store_id)


@router.put(
    "/stores/{store_id}/membership-rules",
    response_model=MembershipRulesPublic,
    summary="Replace a store's membership rules",
    description="Levels lowest first, each reached by a higher 12-month spend, codes unique.",
    responses=problem_responses(400, 401, 403, 404, 422),
)
async def put_rules(
    store_id: str, rules_in: MembershipRulesIn, session: SessionDep, principal: PrincipalDep
) -> MembershipRulesPublic:
    return await rules.put(session, principal=principal, store_id=store_id, rules_in=rules_in)


@router.get(
    "/customers/{customer_id}/membership",
    response_model=MembershipPublic,
    summary="A member's level, points balance and the points expiring next",
    responses=problem_responses(401, 404),
)
async def membership(
    customer_id: str, request: Request, principal: PrincipalDep
) -> MembershipPublic:
    async with request_connection(request) as conn:
        found = await ledger.card(conn, principal=principal, customer_id=customer_id)
    return MembershipPublic(
        customer_id=found.customer_id,
        level=found.level,
        level_name=found.level_name,
        discount_percent=found.discount_percent,
        points_balance=found.points_balance,
        points_expiring=[PointsExpiring(points=p, on=on) for p, on in found.points_expiring],
        spend_12m=found.spend_12m,
    )


@router.get(
    "/customers/{customer_id}/points",
    response_model=Page[PointsEntryPublic],
    summary="A member's points ledger, oldest first",
    responses=problem_responses(400, 401, 404, 422),
)
async def points(
    customer_id: str,
    request: Request,
    principal: PrincipalDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[PointsEntryPublic]:
    async with request_connection(request) as conn:
        rows = await ledger.entries(
            conn, principal=principal, customer_id=customer_id, after=page.after, limit=page.limit
        )
    return Page[PointsEntryPublic](
        items=[PointsEntryPublic.model_validate(dict(r)) for r in rows[: page.limit]],
        next_cursor=next_cursor(rows, page),
    )


@router.post(
    "/customers/{customer_id}/points/redemptions",
    response_model=RedemptionPublic,
    status_code=201,
    summary="Redeem points for a gift",
    description="Never more than the balance: 409 naming it. Honours `Idempotency-Key`.",
    responses=problem_responses(400, 401, 404, 409, 422),
)
async def redeem(
    customer_id: str,
    redemption_in: RedemptionCreate,
    request: Request,
    principal: PrincipalDep,
    once: Annotated[IdempotentWrite, Depends(idempotent("redemptions:{customer_id}"))],
) -> Response:
    async with request_connection(request) as conn:

        async def write() -> bytes:
            done = await ledger.redeem(
                conn,
                principal=principal,
                customer_id=customer_id,
                points=redemption_in.points,
                gift=redemption_in.gift,
            )
            return orjson.dumps(done.public())

        return await once.respond(conn, redemption_in, write, status_code=201)
