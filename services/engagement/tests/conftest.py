"""Engagement's service tests: each module gets a freshly migrated database on the test server."""

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_devstack.fixtures import migrated_database, session_on
from crm_devstack.stack import LocalStack
from crm_libs.db import make_engine, make_sessionmaker


@pytest.fixture(scope="module")
def database_url(stack: LocalStack) -> str:
    return migrated_database(stack, "engagement_service")


@pytest.fixture
async def session(database_url: str) -> AsyncIterator[AsyncSession]:
    async with session_on(database_url) as session:
        yield session


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions that commit, for a test whose steps each run in their own transaction."""
    engine = make_engine(database_url, pool_size=3)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()
