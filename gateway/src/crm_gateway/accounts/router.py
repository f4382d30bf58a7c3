from typing import Annotated

from fastapi import APIRouter, Depends, Request

from crm_gateway.accounts import service
from crm_gateway.accounts.schemas import (
    AccountCreate,
    AccountPublic,
    AccountUpdate,
    RefreshRequest,
    TokenRequest,
    TokenResponse,
)
from crm_gateway.audit import service as audit
from crm_gateway.auth.tokens import issue_access_token
from crm_gateway.client_address import client_address
from crm_gateway.deps import CallerDep, SessionDep, SettingsDep
from crm_libs.pagination import Page, PageParams, page_of, page_params
from crm_libs.principal import Role
from crm_libs.problems import ProblemError, Unauthorized, problem_responses

router = APIRouter(prefix="/api/v1", tags=["accounts"])
# Signing in comes before any principal: these routes are public in the access policy, unguarded.
auth_router = APIRouter(prefix="/api/v1", tags=["accounts"])


async def _tokens(
    session: SessionDep, settings: SettingsDep, account: service.Account
) -> TokenResponse:
    access = issue_access_token(
        service.principal_of(account),
        version=account.token_version,
        secret=settings.jwt_secret,
        ttl_seconds=settings.access_token_ttl_seconds,
    )
    refresh = await service.issue_refresh_token(session, account=account, settings=settings)
    return TokenResponse(
        access_token=access.token, expires_in=access.expires_in, refresh_token=refresh
    )


@auth_router.post(
    "/auth/token",
    response_model=TokenResponse,
    summary="Sign in",
    responses=problem_responses(400, 401, 422, 429),
)
async def sign_in(
    credentials: TokenRequest, session: SessionDep, settings: SettingsDep, request: Request
) -> TokenResponse:
    client = client_address(request, settings.trusted_proxies)
    retry_after = request.app.state.sign_in_limiter.retry_after("sign-in", client)
    if retry_after is not None:
        raise ProblemError(
            "Too many sign-in attempts from this address",
            status=429,
            title="Rate limited",
            headers={"Retry-After": str(retry_after)},
        )
    try:
        account = await service.authenticate(
            session, username=credentials.username, password=credentials.password, settings=settings
        )
    except Unauthorized:
        await session.commit()  # keep the failure count the back-off is based on
        raise
    return await _tokens(session, settings, account)


@auth_router.post(
    "/auth/refresh",
    response_model=TokenResponse,
    summary="Trade a refresh token for new tokens",
    responses=problem_responses(400, 401, 422),
)
async def refresh(
    body: RefreshRequest, session: SessionDep, settings: SettingsDep
) -> TokenResponse:
    account = await service.redeem_refresh_token(session, token=body.refresh_token)
    return await _tokens(session, settings, account)


@router.post(
    "/accounts",
    response_model=AccountPublic,
    status_code=201,
    summary="Open an account",
    responses=problem_responses(400, 401, 403, 409, 422),
)
async def create_account(
    account_in: AccountCreate, session: SessionDep, caller: CallerDep, request: Request
) -> AccountPublic:
    # Only head office can name another store; a manager's own store exists (and is checked
    # by reach in the service), so nobody learns from this which store ids exist.
    if caller.role == Role.HQ_ADMIN and account_in.role != "hq_admin":
        await request.app.state.stores.require(account_in.store_id)
    account = await service.create(session, caller=caller, account_in=account_in)
    # After the reach checks, so nobody learns of another store's roster; a refusal rolls back.
    await request.app.state.stores.require_staff(account.staff_id, store_id=account.store_id)
    await audit.record(
        session,
        caller=caller,
        action="create",
        resource=f"account/{account.id}",
        fields=["username", "role", "store_id"],
    )
    return AccountPublic.model_validate(account, from_attributes=True)


@router.get(
    "/accounts",
    response_model=Page[AccountPublic],
    summary="Accounts within the caller's reach",
    responses=problem_responses(400, 401, 403, 422),
)
async def list_accounts(
    session: SessionDep, caller: CallerDep, page: Annotated[PageParams, Depends(page_params)]
) -> Page[AccountPublic]:
    rows = await service.list_visible(session, caller=caller, page=page)
    return page_of([AccountPublic.model_validate(r, from_attributes=True) for r in rows], page)


@router.patch(
    "/accounts/{account_id}",
    response_model=AccountPublic,
    summary="Change an account",
    responses=problem_responses(400, 401, 403, 404, 422),
)
async def update_account(
    account_id: str,
    account_in: AccountUpdate,
    session: SessionDep,
    caller: CallerDep,
    request: Request,
) -> AccountPublic:
    if caller.role == Role.HQ_ADMIN and account_in.store_id is not None:
        await request.app.state.stores.require(account_in.store_id)
    account = await service.update(
        session, caller=caller, account_id=account_id, account_in=account_in
    )
    if account_in.staff_id is not None or account_in.store_id is not None:
        await request.app.state.stores.require_staff(account.staff_id, store_id=account.store_id)
    await audit.record(
        session,
        caller=caller,
        action="update",
        resource=f"account/{account.id}",
        fields=sorted(account_in.model_dump(exclude_unset=True)),
    )
    return AccountPublic.model_validate(account, from_attributes=True)
