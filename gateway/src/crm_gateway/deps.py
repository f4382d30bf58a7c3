"""Request-scoped dependencies of the gateway's own routes."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from crm_gateway.config import Settings
from crm_libs.db import unit_of_work
from crm_libs.principal import Principal


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async for session in unit_of_work(request.app.state.sessionmaker):
        yield session


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_principal(request: Request) -> Principal:
    """The authenticated caller (bearer token or API key), or 401."""
    principal: Principal = await request.app.state.authenticator.principal_for(request)
    return principal


# scope="function": commit before the response is sent.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
CallerDep = Annotated[Principal, Depends(get_principal)]
