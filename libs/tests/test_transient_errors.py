"""Transient failures (retry the batch) versus poison (dead-letter the event)."""

import asyncpg
import pytest
from aiokafka.errors import KafkaConnectionError, RequestTimedOutError, UnsupportedVersionError
from pydantic import BaseModel, ValidationError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import create_async_engine

from crm_devstack.stack import free_port
from crm_libs.events.transient import is_transient


def _wrapped(driver_error: Exception, *, invalidated: bool = False) -> DBAPIError:
    """A driver error the way SQLAlchemy raises it: wrapped, ``orig`` set, raised ``from`` it."""
    wrapper = DBAPIError("SELECT 1", {}, driver_error, connection_invalidated=invalidated)
    wrapper.__cause__ = driver_error
    return wrapper


class _Purchase(BaseModel):
    total: int


def _validation_error() -> ValidationError:
    try:
        _Purchase.model_validate({"total": "lots"})
    except ValidationError as exc:
        return exc
    raise AssertionError("unreachable")


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.DeadlockDetectedError("deadlock detected"),
        asyncpg.SerializationError("could not serialize access"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.LockNotAvailableError("canceling statement due to lock timeout"),
        _wrapped(asyncpg.SerializationError("could not serialize access")),
        _wrapped(asyncpg.InterfaceError("connection is closed"), invalidated=True),
        OperationalError("SELECT 1", {}, Exception("server closed the connection")),
        PoolTimeoutError("QueuePool limit reached, connection timed out"),
        ConnectionRefusedError(111, "Connect call failed"),
        ConnectionResetError(104, "Connection reset by peer"),
        TimeoutError(),
        KafkaConnectionError("no broker"),
        RequestTimedOutError(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_transient_failures_are_retried(error: Exception) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        KeyError("purchased_at"),
        ValueError("Invalid isoformat string: 'yesterday'"),
        _validation_error(),
        asyncpg.UniqueViolationError("duplicate key value violates unique constraint"),
        IntegrityError("INSERT", {}, asyncpg.ForeignKeyViolationError("violates foreign key")),
        # Bad data in an event: asyncpg could not encode a query argument.
        _wrapped(asyncpg.DataError("invalid input for query argument $1: 'lots'")),
        ProgrammingError("SELECT", {}, asyncpg.UndefinedColumnError("column does not exist")),
        UnsupportedVersionError(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_an_events_own_fault_is_poison(error: Exception) -> None:
    assert not is_transient(error)


def test_a_wrapped_transient_cause_counts_but_a_mere_context_does_not() -> None:
    try:
        try:
            raise asyncpg.DeadlockDetectedError("deadlock detected")
        except asyncpg.DeadlockDetectedError as cause:
            raise RuntimeError("scoring failed") from cause
    except RuntimeError as exc:
        assert is_transient(exc)
    try:
        try:
            raise ConnectionResetError(104, "Connection reset by peer")
        except OSError:
            raise ValueError("qty must be positive") from None
    except ValueError as exc:
        assert not is_transient(exc)
    try:
        try:
            raise ConnectionResetError(104, "Connection reset by peer")
        except OSError:
            raise ValueError("qty must be positive")  # noqa: B904 - the point of the test
    except ValueError as exc:
        assert not is_transient(exc)


async def test_a_database_that_is_not_there_is_transient() -> None:
    engine = create_async_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/crm")
    try:
        with pytest.raises(Exception) as raised:  # noqa: PT011 - whatever the driver raises
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        assert is_transient(raised.value)
    finally:
        await engine.dispose()
