"""Async engine and the per-request unit of work (one commit point per request)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import asyncpg
from fastapi import Request
from sqlalchemy import event
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.sql import ClauseElement
from sqlalchemy.util import LRUCache
from sqlalchemy.util.concurrency import greenlet_spawn

from crm_libs.problems import ProblemError


def make_engine(database_url: str, *, pool_size: int = 10, max_overflow: int = 0) -> AsyncEngine:
    """Create the async engine a service uses for all its database work.

    The pool holds ``pool_size`` connections and, by default, no more: overflow connections are
    closed as soon as they are returned, so a load above the pool size opened and closed a
    connection per request. A request beyond the pool waits for a connection instead.

    There is no ``pool_pre_ping`` (a round trip on every checkout). A connection the server
    closed while it sat in the pool (restart, idle timeout, ``pg_terminate_backend``) is known
    to be closed without asking: the event loop saw the socket close. Such a connection is
    replaced at checkout; one that breaks in use fails that request, and SQLAlchemy then
    invalidates the pool's older connections.
    """
    engine = create_async_engine(
        database_url, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=False
    )
    event.listen(engine.sync_engine.pool, "checkout", _refuse_closed_connection)
    return engine


def _refuse_closed_connection(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    # The asyncpg connection behind SQLAlchemy's adapter; DisconnectionError makes the pool
    # reconnect this slot and check out again.
    connection = getattr(dbapi_connection, "_connection", None)
    if connection is not None and connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def make_read_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for pure reads: the same pool, each statement on its own (autocommit).

    No BEGIN and no COMMIT around a read: two round trips saved on every GET. A read that needs
    one snapshot across several statements takes the unit of work instead.
    """
    return async_sessionmaker(
        engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
    )


async def unit_of_work(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """Yield a session that commits when the request succeeds and rolls back when it fails.

    Services only flush; committing here is what lets a business row and its outbox row share
    one transaction.
    """
    async with factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


async def request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: the request's unit of work on the app's sessionmaker.

    Declare it with ``Depends(request_session, scope="function")`` so the commit happens before
    the response is sent: a 2xx then means the write is durable, and a failing commit still
    reaches the client as an error.
    """
    async with _turn(request):
        async for session in unit_of_work(request.app.state.sessionmaker):
            yield session


async def read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """FastAPI dependency for routes that only read: a session that never opens a transaction
    (see ``make_read_sessionmaker``). Anything flushed through it would be committed statement
    by statement, so routes that write take ``request_session``, never this."""
    async with _turn(request), request.app.state.read_sessionmaker() as session:
        yield session


def connection_turns(pool_size: int) -> asyncio.Semaphore:
    """Requests wait for the pool's connections in the order they came (``app.state.
    connection_turns``, one turn per pooled connection).

    The pool's own wait is not fair: a connection returned to it goes to whichever request asks
    next, and a request that was already waiting goes to the back of the queue again. Under a
    load above the pool size a few requests then wait many turns (a p99 ten times the p50);
    asyncio's semaphore lets nobody pass those already waiting.
    """
    return asyncio.Semaphore(pool_size)


def _turn(request: Request) -> AbstractAsyncContextManager[Any]:
    turns = getattr(request.app.state, "connection_turns", None)
    return turns if turns is not None else contextlib.nullcontext()


@contextlib.asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[Any]:
    """The asyncpg connection under one of ``engine``'s pooled connections, for the few hot
    paths where SQLAlchemy's own work per statement costs more than the statement.

    Same pool, same checkout (a connection the server closed while pooled is replaced first),
    no second pool. Whatever the caller does with it must leave it as it found it: outside a
    transaction (``async with conn.transaction()`` does that). A connection that broke in use,
    or that an interrupted request left inside a transaction, is not given back to the pool but
    dropped (invalidated): the next checkout opens a fresh one, as SQLAlchemy itself does after a
    disconnect.
    """
    pooled = await engine.raw_connection()
    connection = pooled.driver_connection
    try:
        yield connection
    except BaseException as exc:
        if not _still_usable(connection, exc):
            await greenlet_spawn(pooled.invalidate, exc if isinstance(exc, Exception) else None)
        raise
    finally:
        # Back to the pool (its reset finds no transaction of SQLAlchemy's to roll back).
        await greenlet_spawn(pooled.close)


def _still_usable(connection: Any, exc: BaseException) -> bool:
    """Whether a connection whose user failed with ``exc`` may serve the next one.

    Only when the failure says nothing about the connection: the service refused the request
    between statements, or the server refused a statement (a constraint, a value, a trigger)
    and the connection is idle again. Anything else (a lost or reset socket, a timeout, a
    cancelled statement, the driver's own protocol errors, a bug) drops it: a reconnect is
    cheap, a connection in an unknown state handed to the next request is not.
    """
    if connection.is_closed() or connection.is_in_transaction():
        return False
    if isinstance(exc, ProblemError):
        return True
    return isinstance(exc, asyncpg.PostgresError) and not isinstance(exc, _CONNECTION_ERRORS)


# SQLSTATE classes 08 (connection exception) and 57 (operator intervention: shutdown, cancel).
_CONNECTION_ERRORS = (asyncpg.PostgresConnectionError, asyncpg.OperatorInterventionError)


@contextlib.asynccontextmanager
async def request_connection(request: Request) -> AsyncIterator[Any]:
    """``driver_connection`` on the app's engine, taken in turn like the sessions' connections
    (``connection_turns``). Statements on it run each on its own (autocommit) unless the caller
    opens a transaction: a single statement is atomic by itself."""
    async with _turn(request), driver_connection(request.app.state.engine) as connection:
        yield connection


_DIALECT = asyncpg_dialect()
# Compiled forms by statement structure (values apart), like an engine's compiled cache.
_COMPILED: LRUCache[Any, Any] = LRUCache(500)


def driver_sql(
    statement: ClauseElement, params: dict[str, Any] | None = None
) -> tuple[str, list[Any]]:
    """A Core (or ORM-enabled) statement as asyncpg's SQL (``$1``…) and its arguments in order.

    Compiled once per structure, as an engine's compiled cache does it: the key is SQLAlchemy's
    own cache key, which leaves literal values out (a statement built once at import memoises
    its key, so for it this is a dictionary lookup). Values go to asyncpg as they are, without
    SQLAlchemy's type processing, which for text, numbers, dates and times changes nothing.
    """
    key = statement._generate_cache_key()
    if key is None:  # a construct SQLAlchemy cannot cache: compiled every time
        compiled: Any = statement.compile(dialect=_DIALECT)
        values = compiled.construct_params(params, escape_names=False)
    else:
        cache_key, extracted, collected = key
        compiled = _COMPILED.get(cache_key)
        if compiled is None:
            compiled = statement.compile(dialect=_DIALECT, cache_key=key)
            _COMPILED[cache_key] = compiled
        values = compiled.construct_params(
            params, extracted_parameters=extracted, escape_names=False, _collected_params=collected
        )
    return compiled.string, [values[name] for name in compiled.positiontup]


def asyncpg_dsn(database_url: str) -> str:
    """The plain ``postgresql://`` form of a SQLAlchemy URL, for raw asyncpg connections."""
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
