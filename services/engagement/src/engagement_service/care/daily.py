"""The shape every daily care job shares: one replica leads a run (a PostgreSQL advisory lock
held for the run), and a worker looks every few seconds for stores past their local midnight,
first at start-up (a replica started after midnight plans at once). The jobs themselves
(care/scheduled.py's special days, care/routine.py's cadence) say which stores are due."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_libs.leader import database_url_of, leader_lock

T = TypeVar("T")


async def as_leader(
    sessionmaker: async_sessionmaker[AsyncSession], *, lock: int, run: Callable[[], Awaitable[T]]
) -> T | None:
    """Run ``run`` if no other replica holds ``lock``; None when another one leads."""
    async with leader_lock(database_url_of(sessionmaker), lock) as leading:
        if not leading:
            return None
        return await run()


async def check_every(seconds: float, check: Callable[[], Awaitable[None]]) -> None:
    """Run ``check`` now and then every ``seconds``, until the worker is cancelled."""
    while True:
        await check()
        await asyncio.sleep(seconds)
