"""Every statement an app's pooled connections send, for tests of what a request costs."""

import asyncio
from typing import Any

from fastapi import FastAPI
from sqlalchemy import event


class StatementLog:
    """Every statement the app's pooled connections send, one list per checkout of a connection.

    Everything is recorded through ``call_soon``, in the order it happened, because asyncpg
    hands its query loggers their records that way.
    """

    CHECKOUT = "<checkout>"

    def __init__(self, app: FastAPI) -> None:
        self.entries: list[tuple[int, str]] = []
        self.connects = 0
        self._watched: set[int] = set()
        self._loop = asyncio.get_running_loop()
        pool = app.state.engine.sync_engine.pool
        event.listen(pool, "checkout", self._checkout)
        event.listen(pool, "connect", self._count)
        # SQLAlchemy's own statements run as prepared statements, which asyncpg does not log.
        event.listen(app.state.engine.sync_engine, "before_cursor_execute", self._statement)

    def _record(self, connection: Any, what: str) -> None:
        self._loop.call_soon(self.entries.append, (id(connection), what))

    def _count(self, *_: Any) -> None:
        self.connects += 1

    def _statement(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        self._record(conn.connection.dbapi_connection._connection, statement)

    def _checkout(self, dbapi_connection: Any, *_: Any) -> None:
        connection = dbapi_connection._connection  # the asyncpg connection under the adapter
        if id(connection) not in self._watched:
            self._watched.add(id(connection))
            connection.add_query_logger(lambda record: self._record(connection, record.query))
        # A span ends where the next user of the connection begins: by then every record of
        # the previous use is queued (COMMIT's only after the connection went back to the pool).
        self._record(connection, self.CHECKOUT)

    async def around(self, needle: str) -> list[str]:
        """What the connection that sent ``needle`` sent while checked out for it, in order."""
        await asyncio.sleep(0.05)  # the last records are still queued
        spans: list[tuple[int, list[str]]] = []
        current: dict[int, list[str]] = {}
        for key, what in self.entries:
            if what == self.CHECKOUT:
                current[key] = []
                spans.append((key, current[key]))
            elif key in current:
                current[key].append(" ".join(what.split()))
        found = [span for _, span in spans if any(needle in s for s in span)]
        assert len(found) == 1, f"{needle!r} sent in {len(found)} checkouts: {self.entries}"
        return found[0]
