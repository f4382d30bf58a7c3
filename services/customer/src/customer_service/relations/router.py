from typing import Annotated

from fastapi import APIRouter, Depends, Response

from crm_libs.pagination import Page, PageParams, page_of, page_params
from crm_libs.problems import problem_responses
from customer_service import audit_trail
from customer_service.deps import PrincipalDep, ReadSessionDep, SessionDep
from customer_service.relations import family, service
from customer_service.relations.schemas import (
    FamilyPurchasePublic,
    RelationCreate,
    RelationPublic,
)

router = APIRouter(prefix="/customers/{customer_id}", tags=["relations"])
_FIELDS = ["related_customer_id", "kind"]


def _note_both(response: Response, *, action: str, customer_id: str, related_id: str) -> None:
    """One entry per file: both sides' lists changed, and each file's trail should say so."""
    for own in (customer_id, related_id):
        audit_trail.note(
            response,
            action=action,
            resource=f"customer/{own}/relations",
            customer_id=own,
            fields=_FIELDS,
        )


@router.post(
    "/relations",
    response_model=RelationPublic,
    status_code=201,
    summary="Relate a family member's file to this one (both ways)",
    description=(
        "201 when recorded; 200 with the relation already recorded when the same pair is posted "
        "again with the same kind. The related customer sees the inverse kind."
    ),
    responses={
        200: {"model": RelationPublic, "description": "Already recorded with this kind"},
        **problem_responses(400, 401, 404, 409, 422),
    },
)
async def relate(
    customer_id: str,
    relation_in: RelationCreate,
    session: SessionDep,
    principal: PrincipalDep,
    response: Response,
) -> RelationPublic:
    relation, created = await service.relate(
        session, principal=principal, customer_id=customer_id, relation_in=relation_in
    )
    if created:
        _note_both(
            response,
            action="relate",
            customer_id=customer_id,
            related_id=relation.related_customer_id,
        )
    else:
        response.status_code = 200
    return RelationPublic.model_validate(relation, from_attributes=True)


@router.get(
    "/relations",
    response_model=Page[RelationPublic],
    summary="A customer's family relations",
    responses=problem_responses(400, 401, 404, 422),
)
async def list_relations(
    customer_id: str,
    session: ReadSessionDep,
    principal: PrincipalDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[RelationPublic]:
    rows = await service.list_for_customer(
        session, principal=principal, customer_id=customer_id, page=page
    )
    shown = page_of(rows, page, id_of="related_customer_id")
    return Page[RelationPublic](
        items=[RelationPublic.model_validate(r, from_attributes=True) for r in shown.items],
        next_cursor=shown.next_cursor,
    )


@router.delete(
    "/relations/{related_customer_id}",
    status_code=204,
    summary="Remove a family relation (both ways)",
    description="204 whether or not the two were related: the relation is gone either way.",
    responses=problem_responses(401, 404),
)
async def unrelate(
    customer_id: str,
    related_customer_id: str,
    session: SessionDep,
    principal: PrincipalDep,
    response: Response,
) -> Response:
    removed = await service.unrelate(
        session,
        principal=principal,
        customer_id=customer_id,
        related_customer_id=related_customer_id,
    )
    if removed:
        _note_both(
            response, action="unrelate", customer_id=customer_id, related_id=related_customer_id
        )
    return Response(status_code=204, headers=dict(response.headers))


@router.get(
    "/family/purchases",
    response_model=Page[FamilyPurchasePublic],
    summary="The family's purchases together (家族式购买), newest first",
    responses=problem_responses(400, 401, 404, 422),
)
async def family_purchases(
    customer_id: str,
    session: ReadSessionDep,
    principal: PrincipalDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[FamilyPurchasePublic]:
    return await family.purchases(session, principal=principal, customer_id=customer_id, page=page)
