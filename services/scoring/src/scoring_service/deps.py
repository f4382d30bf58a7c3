"""Request-scoped dependencies declared once for every router."""

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.db import read_session, request_session
from crm_libs.principal import PrincipalDep as PrincipalDep  # re-exported for routers
from scoring_service.config import Settings


# async: a plain ``def`` dependency is run in the thread pool, a hop per request.
async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


# scope="function": commit before the response is sent (see crm_libs.db.request_session).
SessionDep = Annotated[AsyncSession, Depends(request_session, scope="function")]
# Routes that only read: no transaction around their statements (see crm_libs.db.read_session).
ReadSessionDep = Annotated[AsyncSession, Depends(read_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
