"""A scheduled job's leader holds its lock outside the service's pool: a run that opens its own
sessions finishes with a pool of one, a second replica skips while it leads, and the lock goes
when the leader does (its block ends, fails, or its connection is lost)."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from crm_devstack.fixtures import eventually
from crm_devstack.stack import LocalStack
from crm_libs.db import asyncpg_dsn, make_engine, make_sessionmaker
from crm_libs.leader import database_url_of, leader_lock

JOB_LOCK = 91_000_017


@pytest.fixture
async def database(stack: LocalStack) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    stack.postgres.create_database(name)
    url = stack.postgres.url(name)
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await connection.execute("CREATE TABLE job_step (replica text, step int)")
    finally:
        await connection.close()
    return url


@pytest.fixture
async def engine(database: str) -> AsyncIterator[AsyncEngine]:
    """A replica's engine with a pool of one: the smallest a service may be given."""
    engine = make_engine(database, pool_size=1)
    try:
        yield engine
    finally:
        await engine.dispose()


async def run_steps(
    sessionmaker: async_sessionmaker[AsyncSession], *, replica: str, steps: int = 3
) -> int:
    """A job's run: each step a transaction of its own on a session from the pool."""
    for step in range(steps):
        async with sessionmaker() as session, session.begin():
            await session.execute(
                text("INSERT INTO job_step VALUES (:replica, :step)"),
                {"replica": replica, "step": step},
            )
    return steps


async def steps_of(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessionmaker() as session:
        rows = await session.execute(
            text("SELECT replica, count(*) FROM job_step GROUP BY replica")
        )
        return {replica: count for replica, count in rows}


async def test_a_led_run_finishes_with_a_pool_of_one(engine: AsyncEngine) -> None:
    sessionmaker = make_sessionmaker(engine)

    async def led() -> int | None:
        async with leader_lock(database_url_of(sessionmaker), JOB_LOCK) as leading:
            if not leading:
                return None
            # The lock holds no pooled connection: the run's sessions have the whole pool.
            assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
            return await run_steps(sessionmaker, replica="a")

    # A leader on a pooled connection waits here for its own connection (the pool's 30 s, then
    # an error); a few seconds are plenty for three short transactions.
    assert await asyncio.wait_for(led(), timeout=10) == 3
    assert await steps_of(sessionmaker) == {"a": 3}


async def test_a_second_replica_skips_while_one_leads(database: str, engine: AsyncEngine) -> None:
    first, second = make_sessionmaker(engine), make_sessionmaker(make_engine(database, pool_size=1))
    leading_now, may_finish = asyncio.Event(), asyncio.Event()

    async def replica(
        sessionmaker: async_sessionmaker[AsyncSession], name: str, *, hold: bool
    ) -> int | None:
        async with leader_lock(database_url_of(sessionmaker), JOB_LOCK) as leading:
            if not leading:
                return None
            if hold:
                leading_now.set()
                await may_finish.wait()
            return await run_steps(sessionmaker, replica=name)

    try:
        leader = asyncio.create_task(replica(first, "a", hold=True))
        await asyncio.wait_for(leading_now.wait(), timeout=10)
        assert await replica(second, "b", hold=False) is None
        may_finish.set()
        assert await asyncio.wait_for(leader, timeout=10) == 3
        # Released at the end of the run: the other replica leads the next one.
        assert await replica(second, "b", hold=False) == 3
        assert await steps_of(first) == {"a": 3, "b": 3}
    finally:
        may_finish.set()
        await second.kw["bind"].dispose()


async def test_the_lock_goes_with_a_failed_run_or_a_lost_connection(
    database: str, engine: AsyncEngine
) -> None:
    url = database_url_of(make_sessionmaker(engine))
    with pytest.raises(RuntimeError):
        async with leader_lock(url, JOB_LOCK) as leading:
            assert leading
            raise RuntimeError("the run failed")
    async with leader_lock(url, JOB_LOCK) as leading:
        assert leading
        # What a crash of the leader's process or a server restart does to its session: the
        # run ends without an error of the lock's own, and nobody waits for an unlock.
        admin = await asyncpg.connect(asyncpg_dsn(database))
        try:
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_locks"
                " WHERE locktype = 'advisory' AND classid = 0 AND objid = $1 AND objsubid = 1"
                " AND granted AND database = (SELECT oid FROM pg_database"
                "                             WHERE datname = current_database())",
                JOB_LOCK,
            )
        finally:
            await admin.close()
        assert killed == 1

    async def leads() -> bool:
        async with leader_lock(url, JOB_LOCK) as leading:
            return leading

    # The server ends the terminated session on its own time, a moment later.
    assert await eventually(leads, timeout=10)
