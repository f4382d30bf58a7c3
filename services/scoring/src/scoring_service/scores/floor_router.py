"""The score's history and the manager's ladder floor."""

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from crm_libs import audit_header
from crm_libs.audit_header import AUDIT_HEADER, AuditEntry
from crm_libs.pagination import Page, PageParams, encode_cursor, page_params
from crm_libs.problems import ProblemError, problem_responses
from scoring_service.deps import PrincipalDep, ReadSessionDep, SessionDep, SettingsDep
from scoring_service.scores import history, ladder_floor, service
from scoring_service.scores.classification_schemas import (
    LadderFloorIn,
    LadderFloorPublic,
    ScoreChangePublic,
)
from scoring_service.scores.models import CustomerScore

router = APIRouter(prefix="/customers/{customer_id}", tags=["scores"])
_FLOOR_FIELDS = ["ladder_floor", "ladder_floor_reason"]


@router.get(
    "/score/history",
    response_model=Page[ScoreChangePublic],
    summary="Every change of the customer's value tier, ladder level and lifecycle, newest first",
    responses=problem_responses(400, 401, 404, 422),
)
async def get_score_history(
    customer_id: str,
    session: ReadSessionDep,
    principal: PrincipalDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[ScoreChangePublic]:
    await service.get_score(session, principal=principal, customer_id=customer_id)  # its scope
    before = _history_cursor(page.after)
    entries = await history.history_page(
        session, customer_id=customer_id, before_id=before, limit=page.limit + 1
    )
    shown = entries[: page.limit]
    return Page[ScoreChangePublic](
        items=[
            ScoreChangePublic(
                at=e.at, field=e.field, previous=e.previous, value=e.value, cause=e.cause
            )
            for e in shown
        ],
        next_cursor=encode_cursor(str(shown[-1].id)) if len(entries) > page.limit else None,
    )


def _history_cursor(after: str | None) -> int | None:
    if after is None:
        return None
    if not after.isdigit():
        raise ProblemError("The cursor is not one this API issued", status=400)
    return int(after)


@router.put(
    "/ladder-floor",
    response_model=LadderFloorPublic,
    summary="Set the manager's iron-core floor: the ladder never drops below it until cleared",
    responses=problem_responses(401, 403, 404, 422),
)
async def put_ladder_floor(
    customer_id: str,
    floor_in: LadderFloorIn,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    response: Response,
) -> LadderFloorPublic:
    score = await ladder_floor.set_floor(
        session,
        principal=principal,
        customer_id=customer_id,
        level=floor_in.level,
        reason=floor_in.reason,
        now=service.window_start(settings.as_of)[0],
    )
    _audit(response, action="set_ladder_floor", customer_id=customer_id)
    return _public(score)


@router.delete(
    "/ladder-floor",
    status_code=204,
    summary="Clear the manager's floor: the ladder is what the customer's record earns",
    responses=problem_responses(401, 403, 404),
)
async def delete_ladder_floor(
    customer_id: str,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    response: Response,
) -> None:
    await ladder_floor.set_floor(
        session,
        principal=principal,
        customer_id=customer_id,
        level=None,
        reason=None,
        now=service.window_start(settings.as_of)[0],
    )
    _audit(response, action="clear_ladder_floor", customer_id=customer_id)


def _audit(response: Response, *, action: str, customer_id: str) -> None:
    entry = AuditEntry(
        action=action,
        resource=f"customer/{customer_id}/ladder-floor",
        customer_id=customer_id,
        fields=_FLOOR_FIELDS,
    )
    response.headers[AUDIT_HEADER] = audit_header.add(response.headers.get(AUDIT_HEADER), entry)


def _public(score: CustomerScore) -> LadderFloorPublic:
    return LadderFloorPublic(
        customer_id=score.customer_id,
        ladder_floor=score.ladder_floor,
        ladder_floor_reason=score.ladder_floor_reason,
        ladder_floor_by=score.ladder_floor_by,
        ladder_level=score.ladder_level,
        ladder_score=score.ladder_score,
        version=score.version,
    )
