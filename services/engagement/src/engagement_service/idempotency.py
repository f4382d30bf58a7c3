"""``Idempotency-Key`` on engagement's writes that a client may retry (a visit logged from a
phone on a weak connection): the same key and body replay the first answer, another body is 409.

As the customer service does it, on the request's unit of work: the key's lock, the lookup, the
write and the stored answer are one transaction, so a second request with the same key waits for
the first to commit and then replays it.
"""

import hashlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import Header, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import Column, DateTime, Integer, PrimaryKeyConstraint, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from crm_libs.problems import Conflict, InvalidField
from engagement_service.deps import PrincipalDep

MAX_KEY_LENGTH = 200


class IdempotencyAnswer(SQLModel, table=True):
    """The first response to a keyed write, replayed when the same key and body come again.

    Not ``idempotency_record``: the customer service's table has that name in the one metadata
    the services share when imported together (the tests, the gateway's document)."""

    __tablename__ = "idempotency_answer"
    __table_args__ = (PrimaryKeyConstraint("scope", "key"),)

    scope: str = Field(sa_column=Column(Text, nullable=False))
    key: str = Field(sa_column=Column(Text, nullable=False))
    request_hash: str = Field(sa_column=Column(Text, nullable=False))
    status_code: int = Field(sa_column=Column(Integer, nullable=False))
    body: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    created_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )


# Held to the end of the transaction: a second request with the same key waits, then replays.
_LOCK_KEY = text("SELECT pg_advisory_xact_lock(hashtextextended(:lock, 0))")
_FIND = text(
    """
    SELECT request_hash, status_code, body::text AS body FROM idempotency_answer
    WHERE scope = :scope AND key = :key
    """
)
_REMEMBER = text(
    """
    INSERT INTO idempotency_answer (scope, key, request_hash, status_code, body)
    VALUES (:scope, :key, :hash, :status, CAST(:body AS jsonb))
    """
)


def request_fingerprint(operation: str, body: Any) -> str:
    return hashlib.sha256(
        operation.encode() + b"\n" + orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    ).hexdigest()


class IdempotentWrite:
    """One route's write, done once per ``Idempotency-Key`` and replayed after that."""

    def __init__(self, *, scope: str, operation: str, key: str | None) -> None:
        self._scope = scope
        self._operation = operation
        self._key = key

    async def respond(
        self,
        session: AsyncSession,
        request_body: BaseModel,
        write: Callable[[], Awaitable[BaseModel]],
        *,
        status_code: int,
    ) -> Response:
        """``write()``'s answer as JSON; with a key already used for this body, the stored one."""
        if self._key is None:
            return _json((await write()).model_dump_json().encode(), status_code)
        key = self._key
        if not key or len(key) > MAX_KEY_LENGTH:
            raise InvalidField("Idempotency-Key", f"must be 1 to {MAX_KEY_LENGTH} characters")
        fingerprint = request_fingerprint(self._operation, request_body.model_dump(mode="json"))
        await session.execute(_LOCK_KEY, {"lock": f"{self._scope}\n{key}"})
        found = (await session.execute(_FIND, {"scope": self._scope, "key": key})).one_or_none()
        if found is not None:
            if found.request_hash != fingerprint:
                raise Conflict("This Idempotency-Key was already used with a different request")
            return _json(found.body.encode(), found.status_code)
        body = (await write()).model_dump_json()
        await session.execute(
            _REMEMBER,
            {
                "scope": self._scope,
                "key": key,
                "hash": fingerprint,
                "status": status_code,
                "body": body,
            },
        )
        return _json(body.encode(), status_code)


def _json(body: bytes, status_code: int) -> Response:
    return Response(body, status_code=status_code, media_type="application/json")


def idempotent(operation: str) -> Callable[..., Awaitable[IdempotentWrite]]:
    """The dependency for a route honouring ``Idempotency-Key``; ``operation`` is formatted with
    the path parameters, so one key names one write to one resource."""

    async def dependency(  # async: no thread-pool hop per request
        request: Request,
        principal: PrincipalDep,
        idempotency_key: Annotated[str | None, Header()] = None,
    ) -> IdempotentWrite:
        return IdempotentWrite(
            scope=principal.subject,
            operation=operation.format(**request.path_params),
            key=idempotency_key,
        )

    return dependency
