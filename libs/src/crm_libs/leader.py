"""One replica leads a scheduled job's run: a session-level advisory lock, held on a connection
of its own for the run.

The lock is never taken on a connection of the service's pool. A run opens sessions of its own
from that pool for its work; a leader that also kept a pooled connection for the whole run
would wait for itself with a pool of one, and with a pool of N, N jobs starting together
(relay, points expiry, staff inactivity, ...) would each hold one and wait for another forever,
starving every request meanwhile. A plain asyncpg connection, opened for the run and closed
after, costs one connect per run (runs are minutes apart) and frees the lock when it closes: a
leader that crashed or lost its connection leaves no lock behind.

Transaction-level locks (``pg_advisory_xact_lock`` per store inside a work transaction) are
not this module's: they live and die with the work's own pooled transaction.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from crm_libs.db import asyncpg_dsn

_TRY_LOCK = "SELECT pg_try_advisory_lock($1::bigint)"
_UNLOCK = "SELECT pg_advisory_unlock($1::bigint)"
# What a leader's connection lost meanwhile (server restart, terminated backend) raises.
_CONNECTION_LOST = (
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InterfaceError,
    # A backend terminated mid-statement can leave the client's protocol state unusable.
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)
_CLOSE_SECONDS = 5.0


@contextlib.asynccontextmanager
async def leader_lock(database_url: str, key: int) -> AsyncIterator[bool]:
    """Whether this replica leads the job ``key`` (a one-bigint advisory lock key) for the
    block: True while it holds the lock, False when another replica does (the caller skips)."""
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        leading = bool(await connection.fetchval(_TRY_LOCK, key))
        yield leading
        if leading:
            # Closing would free it too; unlocking first lets the next leader in without
            # waiting for the server to end the session. A connection lost during the run took
            # the lock with it: the run's result stands.
            with contextlib.suppress(*_CONNECTION_LOST):
                await connection.fetchval(_UNLOCK, key)
    finally:
        # A close that fails has dropped the connection all the same (asyncpg aborts it).
        with contextlib.suppress(*_CONNECTION_LOST):
            await connection.close(timeout=_CLOSE_SECONDS)


def database_url_of(sessionmaker: async_sessionmaker[Any]) -> str:
    """The URL (password included) of the database ``sessionmaker``'s engine connects to: the
    jobs are given the service's sessionmaker, and lead on a connection to the same database."""
    bind = sessionmaker.kw["bind"]
    if not isinstance(bind, AsyncEngine):
        raise TypeError(f"sessionmaker bound to {type(bind).__name__}, not an AsyncEngine")
    return bind.url.render_as_string(hide_password=False)
