"""``/complaints``: open one, take its steps, read them (complaints/steps.py says the order).

Who: a store's people open complaints and take their steps, each step recording the account
and staff member who took it; a partner store's system may open a complaint where the customer
made it (its counter or hotline tool) and read the store's complaints, but takes no step: the
steps are a person's listening, apology, solution and question, not a system's (access.py).
"""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query
from fastapi.responses import Response

from crm_libs.pagination import Page, PageParams, page_of, page_params
from crm_libs.problems import problem_responses
from engagement_service.complaints import service
from engagement_service.complaints.schemas import (
    ComplaintCreate,
    ComplaintPublic,
    ComplaintStatus,
    StepPublic,
    StepTaken,
)
from engagement_service.complaints.service import ComplaintRecord
from engagement_service.deps import PrincipalDep, ReadSessionDep, SessionDep, SettingsDep
from engagement_service.idempotency import IdempotentWrite, idempotent

router = APIRouter(tags=["complaints"])


def public(record: ComplaintRecord) -> ComplaintPublic:
    c = record.complaint
    minutes = None
    if c.closed_at is not None:
        minutes = round((c.closed_at - c.opened_at).total_seconds() / 60, 1)
    return ComplaintPublic(
        id=c.id,
        store_id=c.store_id,
        customer_id=c.customer_id,
        category=c.category,
        points=c.points,
        status=c.status,
        next_step=c.next_step,
        round=c.round,
        opened_at=c.opened_at,
        opened_by=c.opened_by,
        opened_by_staff_id=c.opened_by_staff_id,
        closed_at=c.closed_at,
        resolution_minutes=minutes,
        resolved_on_the_spot=c.resolved_on_the_spot,
        follow_up_task_id=c.follow_up_task_id,
        steps=[StepPublic.model_validate(s, from_attributes=True) for s in record.steps],
    )


@router.post(
    "/complaints",
    response_model=ComplaintPublic,
    status_code=201,
    summary="Open a complaint with the points heard",
    description="The complaint then waits for its steps in order: `listen`, `apologise`, "
    "`resolve`, `feedback`. A complaint about the product's effect or quality, or about the "
    "service, becomes the customer's stop reason (a customer who then stops gets the matching "
    "recovery task). Honours `Idempotency-Key`. An unknown customer is a 404; a file archived, "
    "erased or merged a 409.",
    responses=problem_responses(400, 401, 403, 404, 409, 422),
)
async def open_complaint(
    complaint_in: ComplaintCreate,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    once: Annotated[IdempotentWrite, Depends(idempotent("complaints"))],
) -> Response:
    async def write() -> ComplaintPublic:
        record = await service.open_complaint(
            session,
            principal=principal,
            complaint_in=complaint_in,
            now=datetime.now(UTC),
            default_timezone=settings.default_timezone,
        )
        return public(record)

    return await once.respond(session, complaint_in, write, status_code=201)


@router.post(
    "/complaints/{complaint_id}/steps",
    response_model=ComplaintPublic,
    status_code=201,
    summary="Take the complaint's next step",
    description="Steps come in order, each once: `listen`, `apologise`, `resolve` (`solution`, "
    "`compensation` in yuan, `cause`), `feedback` (`satisfied`). Any other step, a repeated "
    "one, or a step on a closed complaint is a 409 naming the step expected. A satisfied "
    "feedback closes the complaint. An unsatisfied one puts a follow-up task (kind "
    "`complaint`) on the file owner's list, due within `complaint_follow_up_days` (2 by "
    "default), and the complaint waits for a new `resolve` and `feedback` (the next round); "
    "that feedback completes the task if a visit has not. Answers the complaint. Honours "
    "`Idempotency-Key`.",
    responses=problem_responses(400, 401, 403, 404, 409, 422),
)
async def take_step(
    complaint_id: str,
    step_in: Annotated[StepTaken, Body()],
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    once: Annotated[IdempotentWrite, Depends(idempotent("complaints/{complaint_id}/steps"))],
) -> Response:
    async def write() -> ComplaintPublic:
        record = await service.take_step(
            session,
            principal=principal,
            complaint_id=complaint_id,
            step_in=step_in,
            now=datetime.now(UTC),
            default_timezone=settings.default_timezone,
            follow_up_days=settings.complaint_follow_up_days,
        )
        return public(record)

    return await once.respond(session, step_in, write, status_code=201)


@router.get(
    "/complaints/{complaint_id}",
    response_model=ComplaintPublic,
    summary="A complaint with its steps",
    responses=problem_responses(401, 403, 404),
)
async def get_complaint(
    complaint_id: str, session: ReadSessionDep, principal: PrincipalDep
) -> ComplaintPublic:
    return public(
        await service.get_complaint(session, principal=principal, complaint_id=complaint_id)
    )


@router.get(
    "/complaints",
    response_model=Page[ComplaintPublic],
    summary="The store's complaints, by customer or status, oldest first",
    responses=problem_responses(400, 401, 403, 422),
)
async def list_complaints(
    session: ReadSessionDep,
    principal: PrincipalDep,
    page: Annotated[PageParams, Depends(page_params)],
    customer_id: Annotated[str | None, Query(max_length=64)] = None,
    status: ComplaintStatus | None = None,
) -> Page[ComplaintPublic]:
    rows = await service.list_complaints(
        session, principal=principal, page=page, customer_id=customer_id, status=status
    )
    return page_of([public(r) for r in rows], page, id_of="id")
