"""The customer service's tests: each module that asks gets a freshly migrated database on the
test server."""

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from crm_devstack.fixtures import migrated_database, session_on
from crm_devstack.stack import LocalStack


@pytest.fixture(scope="module")
def database_url(stack: LocalStack) -> str:
    return migrated_database(stack, "customer_service")


@pytest.fixture
async def session(database_url: str) -> AsyncIterator[AsyncSession]:
    async with session_on(database_url) as session:
        yield session
