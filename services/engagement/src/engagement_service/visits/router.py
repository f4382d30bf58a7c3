from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from crm_libs.pagination import Page, PageParams, page_of, page_params
from crm_libs.problems import problem_responses
from engagement_service.deps import PrincipalDep, ReadSessionDep, SessionDep, SettingsDep
from engagement_service.idempotency import IdempotentWrite, idempotent
from engagement_service.visits import service
from engagement_service.visits.models import Visit
from engagement_service.visits.schemas import VisitCreate, VisitPublic

router = APIRouter(tags=["visits"])


def _public(visit: Visit) -> VisitPublic:
    return VisitPublic.model_validate(visit, from_attributes=True)


@router.post(
    "/visits",
    response_model=VisitPublic,
    status_code=201,
    summary="Log a visit or call",
    description="Completes the customer's open task it names (`task_id`), schedules its next "
    "step as a task when that names a day, and announces the fields collected for the file "
    "(`visit.recorded` on crm.engagement.v1). Honours `Idempotency-Key`. An unknown customer "
    "is a 404; a task not the customer's or a time in the future a 422; a task no longer open "
    "or a file archived or merged a 409.",
    responses=problem_responses(400, 401, 404, 409, 422),
)
async def record_visit(
    visit_in: VisitCreate,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    once: Annotated[IdempotentWrite, Depends(idempotent("visits"))],
) -> Response:
    async def write() -> VisitPublic:
        visit = await service.record_visit(
            session,
            principal=principal,
            visit_in=visit_in,
            now=datetime.now(UTC),
            clock_skew=timedelta(seconds=settings.visit_clock_skew_seconds),
            default_timezone=settings.default_timezone,
        )
        return _public(visit)

    return await once.respond(session, visit_in, write, status_code=201)


@router.get(
    "/visits",
    response_model=Page[VisitPublic],
    summary="Visits and calls logged in the store, by customer or staff member",
    responses=problem_responses(400, 401, 422),
)
async def list_visits(
    session: ReadSessionDep,
    principal: PrincipalDep,
    page: Annotated[PageParams, Depends(page_params)],
    customer_id: Annotated[str | None, Query(max_length=64)] = None,
    staff_id: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[VisitPublic]:
    rows = await service.list_visits(
        session, principal=principal, page=page, customer_id=customer_id, staff_id=staff_id
    )
    return page_of([_public(v) for v in rows], page)
