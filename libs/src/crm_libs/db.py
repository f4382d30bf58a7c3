"""Async engine and the per-request unit of work (one commit point per request)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Request
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def make_engine(database_url: str, *, pool_size: int = 10) -> AsyncEngine:
    """Create the async engine a service uses for all its database work."""
    return create_async_engine(
        database_url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def unit_of_work(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """Yield a session that commits when the request succeeds and rolls back when it fails.

    Services only flush; committing here is what lets a business row and its outbox row share
    one transaction.
    """
    async with factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


async def request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: the request's unit of work on the app's sessionmaker.

    Declare it with ``Depends(request_session, scope="function")`` so the commit happens before
    the response is sent: a 2xx then means the write is durable, and a failing commit still
    reaches the client as an error.
    """
    async for session in unit_of_work(request.app.state.sessionmaker):
        yield session


def asyncpg_dsn(database_url: str) -> str:
    """The plain ``postgresql://`` form of a SQLAlchemy URL, for raw asyncpg connections."""
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
