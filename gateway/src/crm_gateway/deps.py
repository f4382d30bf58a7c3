"""Request-scoped dependencies of the gateway's own routes."""

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from crm_gateway.config import Settings
from crm_libs.db import request_session
from crm_libs.principal import Principal


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_principal(request: Request) -> Principal:
    """The authenticated caller (bearer token or API key), or 401."""
    principal: Principal = await request.app.state.authenticator.principal_for(request)
    return principal


# scope="function": commit before the response is sent (see crm_libs.db.request_session).
SessionDep = Annotated[AsyncSession, Depends(request_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
CallerDep = Annotated[Principal, Depends(get_principal)]
