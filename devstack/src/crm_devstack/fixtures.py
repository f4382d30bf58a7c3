"""Pytest fixtures: a throwaway PostgreSQL, broker and the four services on free ports."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from crm_devstack.stack import LocalStack, Ports
from crm_libs.db import make_engine, make_sessionmaker

T = TypeVar("T")


@contextmanager
def throwaway_stack(
    extra_env: dict[str, str], *, workers: dict[str, int] | None = None
) -> Iterator[LocalStack]:
    """The whole system on free ports in a temporary directory, removed afterwards.

    ``workers``: worker processes per service (one each by default in tests).
    """
    data_dir = Path(tempfile.mkdtemp(prefix="crm-test-"))
    local = LocalStack(
        data_dir=data_dir,
        ports=Ports.free(),
        environment="test",
        extra_env=extra_env,
        workers=dict(workers or {}),
    )
    try:
        local.start()
        yield local
    finally:
        local.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    """The whole system, started once per test session and torn down at the end."""
    # Head office's token drives the whole suite; partner keys keep a limit low enough to test.
    limits = {
        "CRM_RATE_LIMIT": "1000000/minute",
        "CRM_API_KEY_RATE_LIMIT": "40/minute",
        "CRM_SIGN_IN_RATE_LIMIT": "100000/minute",
        "CRM_CORS_ORIGINS": '["https://app.example"]',
    }
    with throwaway_stack(limits) as local:
        yield local


@pytest.fixture(scope="module")
def admin_token(stack: LocalStack) -> str:
    """A bearer token of the first administrator (head office), signed for each test module:
    access tokens last 15 minutes, less than the whole suite takes on a busy machine."""
    response = httpx.post(
        stack.url("gateway") + "/api/v1/auth/token",
        json={"username": "admin", "password": stack.admin_password},
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


@pytest.fixture
async def api(stack: LocalStack, admin_token: str) -> AsyncIterator[httpx.AsyncClient]:
    """A head-office client of the public API, through the gateway."""
    async with httpx.AsyncClient(
        base_url=stack.url("gateway") + "/api/v1",
        headers={"Authorization": f"Bearer {admin_token}"},
        timeout=30,
    ) as client:
        yield client


@pytest.fixture
async def anonymous(stack: LocalStack) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the public API without credentials."""
    async with httpx.AsyncClient(base_url=stack.url("gateway") + "/api/v1", timeout=30) as client:
        yield client


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout: float = 30.0, interval: float = 0.1
) -> T:
    """Poll until ``probe`` returns something truthy (events arrive asynchronously)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


@asynccontextmanager
async def session_on(database_url: str) -> AsyncIterator[AsyncSession]:
    """A session on ``database_url`` whose work is rolled back afterwards."""
    engine = make_engine(database_url, pool_size=2)
    try:
        async with make_sessionmaker(engine)() as session:
            yield session
            await session.rollback()
    finally:
        await engine.dispose()


def empty_database(stack: LocalStack) -> str:
    """The URL of a new, empty database on the test server."""
    import uuid

    name = f"t_{uuid.uuid4().hex[:12]}"
    stack.postgres.create_database(name)
    return stack.postgres.url(name)


def migrated_database(stack: LocalStack, migrations_module: str) -> str:
    """A new, empty database on the test server with ``migrations_module``'s schema applied."""
    url = empty_database(stack)
    migrate(url, migrations_module)
    return url


def migrate(database_url: str, migrations_module: str) -> None:
    """``migrations_module``'s schema applied to the database at ``database_url``, in a process
    of its own (as a deployable's migrations run)."""
    import os
    import subprocess
    import sys

    subprocess.run(
        [sys.executable, "-m", f"{migrations_module}.migrate"],
        env={**os.environ, "CRM_DATABASE_URL": database_url},
        check=True,
    )
