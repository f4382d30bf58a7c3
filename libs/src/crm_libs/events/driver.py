"""The asyncpg connection under a SQLAlchemy session, for bulk work SQLAlchemy would slow down.

``COPY`` and statements with array parameters sent to asyncpg directly skip statement
compilation, per-parameter processing and a greenlet switch per call, and their rows come back
as asyncpg records, not SQLAlchemy rows. They run in the session's transaction.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

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


def csv_rows(rows: Iterable[Sequence[object]]) -> bytes:
    """Rows as ``COPY ... (FORMAT csv)`` data, quoted where a value needs it.

    Made before a transaction (outside it), a COPY of them costs the transaction only the
    server's parsing: binary COPY from records encodes every value while the server waits."""
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    return text.getvalue().encode()


async def copy_csv(
    db: asyncpg.Connection, table: str, *, data: bytes, columns: Sequence[str]
) -> None:
    """COPY rows made by :func:`csv_rows` into ``table``."""
    await db.copy_to_table(table, source=io.BytesIO(data), columns=list(columns), format="csv")
