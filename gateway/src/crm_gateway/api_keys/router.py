from typing import Annotated

from fastapi import APIRouter, Depends, Request

from crm_gateway.api_keys import service
from crm_gateway.api_keys.schemas import ApiKeyCreate, ApiKeyIssued, ApiKeyPublic
from crm_gateway.audit import service as audit
from crm_gateway.deps import CallerDep, SessionDep
from crm_libs.pagination import Page, PageParams, page_of, page_params
from crm_libs.principal import Role
from crm_libs.problems import problem_responses

router = APIRouter(prefix="/api/v1/api-keys", tags=["api keys"])


@router.post(
    "",
    response_model=ApiKeyIssued,
    status_code=201,
    summary="Issue a partner API key",
    responses=problem_responses(400, 401, 403, 422),
)
async def issue_key(
    key_in: ApiKeyCreate, session: SessionDep, caller: CallerDep, request: Request
) -> ApiKeyIssued:
    if caller.role == Role.HQ_ADMIN:  # others may only name their own store
        await request.app.state.stores.require(key_in.store_id)
    key, secret = await service.issue(session, caller=caller, key_in=key_in)
    await audit.record(
        session, caller=caller, action="create", resource=f"api-key/{key.id}", fields=[]
    )
    public = ApiKeyPublic.model_validate(key, from_attributes=True)
    return ApiKeyIssued(**public.model_dump(), key=secret)


@router.get(
    "",
    response_model=Page[ApiKeyPublic],
    summary="API keys within the caller's reach",
    responses=problem_responses(400, 401, 403, 422),
)
async def list_keys(
    session: SessionDep, caller: CallerDep, page: Annotated[PageParams, Depends(page_params)]
) -> Page[ApiKeyPublic]:
    rows = await service.list_visible(session, caller=caller, page=page)
    return page_of([ApiKeyPublic.model_validate(r, from_attributes=True) for r in rows], page)


@router.delete(
    "/{key_id}",
    response_model=ApiKeyPublic,
    summary="Revoke an API key (at once, everywhere)",
    responses=problem_responses(401, 404),
)
async def revoke_key(
    key_id: str, session: SessionDep, caller: CallerDep, request: Request
) -> ApiKeyPublic:
    key = await service.revoke(session, caller=caller, key_id=key_id)
    request.app.state.authenticator.forget_key(key.prefix)
    await audit.record(
        session, caller=caller, action="revoke", resource=f"api-key/{key.id}", fields=[]
    )
    return ApiKeyPublic.model_validate(key, from_attributes=True)
