"""``Idempotency-Key`` on engagement's writes that a client may retry (a visit logged from a
phone on a weak connection): the same key and body replay the first answer, another body is 409
(crm_libs.idempotency, over engagement's own table of answers).

On the request's unit of work: the key's lock, the lookup, the write and the stored answer are
one transaction, so a second request with the same key waits for the first to commit and then
replays it.
"""

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import Column, DateTime, Integer, PrimaryKeyConstraint, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from crm_libs import idempotency
from crm_libs.idempotency import StoredAnswer


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


class _SessionBook:
    """``idempotency_answer`` on the request's session."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock(self, name: str) -> None:
        await self._session.execute(_LOCK_KEY, {"lock": name})

    async def find(self, scope: str, key: str) -> StoredAnswer | None:
        found = (await self._session.execute(_FIND, {"scope": scope, "key": key})).one_or_none()
        return None if found is None else StoredAnswer(*found)

    async def remember(self, scope: str, key: str, answer: StoredAnswer) -> None:
        await self._session.execute(
            _REMEMBER,
            {
                "scope": scope,
                "key": key,
                "hash": answer.request_hash,
                "status": answer.status_code,
                "body": answer.body,
            },
        )


class IdempotentWrite(idempotency.IdempotentWrite):
    """One route's write, done once per ``Idempotency-Key`` and replayed after that."""

    async def respond(
        self,
        session: AsyncSession,
        request_body: BaseModel,
        write: Callable[[], Awaitable[BaseModel]],
        *,
        status_code: int,
    ) -> Response:
        """``write()``'s answer as JSON; with a key already used for this body, the stored one."""

        async def written() -> bytes:
            return (await write()).model_dump_json().encode()

        return await self.once(
            _SessionBook(session), request_body, written, status_code=status_code
        )


# The dependency for a route honouring ``Idempotency-Key``; ``operation`` is formatted with the
# path parameters, so one key names one write to one resource.
idempotent = idempotency.idempotent_for(IdempotentWrite)
