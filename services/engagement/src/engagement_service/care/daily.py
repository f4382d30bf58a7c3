"""The shape every daily care job shares: one replica leads a run (a PostgreSQL advisory lock
held for the run), and a worker looks every few seconds for stores past their local midnight,
first at start-up (a replica started after midnight plans at once). The jobs themselves
(care/scheduled.py's special days, care/routine.py's cadence) say which stores are due."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

T = TypeVar("T")


async def as_leader(
    sessionmaker: async_sessionmaker[AsyncSession], *, lock: int, run: Callable[[], Awaitable[T]]
) -> T | None:
    """Run ``run`` if no other replica holds ``lock``; None when another one leads."""
    async with sessionmaker() as leader:
        got = (
            await leader.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": lock})
        ).scalar_one()
        if not got:
            return None
        try:
            return await run()
        finally:
            await leader.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": lock})
            await leader.commit()


async def check_every(seconds: float, check: Callable[[], Awaitable[None]]) -> None:
    """Run ``check`` now and then every ``seconds``, until the worker is cancelled."""
    while True:
        await check()
        await asyncio.sleep(seconds)
