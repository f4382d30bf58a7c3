from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from crm_gateway.audit import service
from crm_gateway.deps import CallerDep, SessionDep
from crm_libs.pagination import Page, PageParams, page_of, page_params
from crm_libs.principal import Role
from crm_libs.problems import Forbidden, InvalidField, problem_responses

router = APIRouter(prefix="/api/v1", tags=["audit"])


class AuditEntryPublic(BaseModel):
    id: int
    at: datetime
    actor: str
    role: str
    store_id: str | None
    action: str
    resource: str
    customer_id: str | None
    fields: list[str]
    request_id: str | None
    status: int | None


@router.get(
    "/audit",
    response_model=Page[AuditEntryPublic],
    summary="The audit trail (head office only)",
    responses=problem_responses(400, 401, 403, 422),
)
async def list_audit(
    session: SessionDep,
    caller: CallerDep,
    page: Annotated[PageParams, Depends(page_params)],
    customer_id: Annotated[str | None, Query(max_length=64)] = None,
    actor: Annotated[str | None, Query(max_length=100)] = None,
    since: Annotated[datetime | None, Query(alias="from")] = None,
    until: Annotated[datetime | None, Query(alias="to")] = None,
) -> Page[AuditEntryPublic]:
    if caller.role != Role.HQ_ADMIN:
        raise Forbidden("Only head office reads the audit trail")
    if page.after is not None and not page.after.isdigit():
        raise InvalidField("cursor", "not a cursor of this list")
    rows = await service.list_entries(
        session, page=page, customer_id=customer_id, actor=actor, since=since, until=until
    )
    return page_of([AuditEntryPublic.model_validate(r, from_attributes=True) for r in rows], page)
