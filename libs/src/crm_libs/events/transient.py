"""Which failures are transient: the one place that decides between "retry later" and "poison".

A consumer retries a batch that failed for a transient reason (the database or the broker was
briefly unreachable, a deadlock, a serialization failure, a timeout) and never dead-letters it;
anything else is the event's own fault (it fails validation or a domain rule) and goes to the
dead-letter topic. Erring towards "transient" stalls a partition, visibly (lag, retry logs);
erring towards "poison" loses a good event, silently, so only what is known to pass is listed.
"""

from __future__ import annotations

from collections.abc import Iterator

from aiokafka.errors import KafkaError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

# SQLSTATE classes (first two characters) of errors that say nothing about the statement itself:
# 08 connection exception, 40 transaction rollback (serialization failure, deadlock),
# 53 insufficient resources (too many connections, disk full), 57 operator intervention
# (shutdown, "cannot connect now", statement timeout), 58 system error (I/O).
_TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57", "58"})
# lock_not_available: a lock_timeout ran out while another transaction held the row.
_TRANSIENT_SQLSTATES = frozenset({"55P03"})


def is_transient(exc: BaseException) -> bool:
    """True if ``exc`` (or an error it wraps) may well succeed when simply tried again later."""
    return any(_is_transient_itself(error) for error in _wrapped_errors(exc))


def _is_transient_itself(error: BaseException) -> bool:
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    # OperationalError is the DB-API's "not the programmer's fault" (disconnects, server
    # memory); the pool's TimeoutError means no connection could be checked out in time.
    if isinstance(error, OperationalError | PoolTimeoutError):
        return True
    # Refused or reset connections, DNS hiccups, asyncio timeouts.
    if isinstance(error, OSError | TimeoutError):
        return True
    if isinstance(error, KafkaError):
        return bool(error.retriable)
    # asyncpg's server errors (and SQLAlchemy's adapted copies of them) carry the SQLSTATE.
    sqlstate = getattr(error, "sqlstate", None)
    return isinstance(sqlstate, str) and (
        sqlstate[:2] in _TRANSIENT_SQLSTATE_CLASSES or sqlstate in _TRANSIENT_SQLSTATES
    )


def _wrapped_errors(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it was raised from: SQLAlchemy keeps the driver's error in ``orig`` and
    raises ``from`` it. An error merely raised while handling another (``__context__``) is not
    followed: a rule broken in an ``except OSError:`` block is still a broken rule."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        yield error
        pending.append(error.__cause__)
        if isinstance(error, DBAPIError) and isinstance(error.orig, BaseException):
            pending.append(error.orig)


def is_duplicate_key(exc: BaseException) -> bool:
    """True if ``exc`` (or an error it wraps) is a unique or primary key violation."""
    return any(getattr(error, "sqlstate", None) == "23505" for error in _wrapped_errors(exc))
