"""The asyncpg connection under a SQLAlchemy session, for bulk work SQLAlchemy would slow down.

``COPY`` and statements with array parameters sent to asyncpg directly skip statement
compilation, per-parameter processing and a greenlet switch per call, and their rows come back
as asyncpg records, not SQLAlchemy rows. They run in the session's transaction.
"""

from __future__ import annotations

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection of ``session``, inside the session's transaction.

    SQLAlchemy's asyncpg adapter sends BEGIN with the first statement it executes; when it has
    executed none yet, a trivial one makes it begin (otherwise the driver's statements would
    run in autocommit, outside the transaction)."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection  # type: ignore[assignment]
    if not driver.is_in_transaction():
        await connection.exec_driver_sql("SELECT 1")
    return driver
