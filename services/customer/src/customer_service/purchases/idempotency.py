"""``Idempotency-Key`` on writes that create money: a replay, or 409 for another body.

Routers take ``Depends(idempotent("..."))`` and hand it their write; the lookup, the replay and
the storing of the first response happen here, in the request's transaction.
"""

import hashlib
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import orjson
from fastapi import Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_libs.problems import Conflict, InvalidField
from customer_service.deps import PrincipalDep, SessionDep
from customer_service.purchases.models import IdempotencyRecord

MAX_KEY_LENGTH = 200


def request_fingerprint(route: str, body: Any) -> str:
    return hashlib.sha256(
        route.encode() + b"\n" + orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    ).hexdigest()


async def find_replay(
    session: AsyncSession, *, scope: str, key: str, fingerprint: str
) -> IdempotencyRecord | None:
    """The stored response for this key, or None. Serialises concurrent uses of one key."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidField("Idempotency-Key", f"must be 1 to {MAX_KEY_LENGTH} characters")
    # Held to the end of the transaction: a second request with the same key waits, then replays.
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": f"{scope}\n{key}"}
    )
    record = (
        await session.execute(
            select(IdempotencyRecord).where(
                col(IdempotencyRecord.scope) == scope, col(IdempotencyRecord.key) == key
            )
        )
    ).scalar_one_or_none()
    if record is not None and record.request_hash != fingerprint:
        raise Conflict("This Idempotency-Key was already used with a different request")
    return record


def remember(
    session: AsyncSession,
    *,
    scope: str,
    key: str,
    fingerprint: str,
    status_code: int,
    body: dict[str, Any],
) -> None:
    session.add(
        IdempotencyRecord(
            scope=scope, key=key, request_hash=fingerprint, status_code=status_code, body=body
        )
    )


class IdempotentWrite:
    """One route's write, done once per ``Idempotency-Key`` and replayed after that."""

    def __init__(
        self, session: AsyncSession, *, scope: str, operation: str, key: str | None
    ) -> None:
        self._session = session
        self._scope = scope
        self._operation = operation
        self._key = key

    async def respond(
        self,
        request_body: BaseModel,
        write: Callable[[], Awaitable[BaseModel]],
        *,
        status_code: int,
    ) -> JSONResponse:
        """``write()``'s response; with a key already used for this body, the stored one."""
        if self._key is None:
            body = (await write()).model_dump(mode="json")
            return JSONResponse(body, status_code=status_code)
        fingerprint = request_fingerprint(self._operation, request_body.model_dump(mode="json"))
        replay = await find_replay(
            self._session, scope=self._scope, key=self._key, fingerprint=fingerprint
        )
        if replay is not None:
            return JSONResponse(replay.body, status_code=replay.status_code)
        body = (await write()).model_dump(mode="json")
        remember(
            self._session,
            scope=self._scope,
            key=self._key,
            fingerprint=fingerprint,
            status_code=status_code,
            body=body,
        )
        return JSONResponse(body, status_code=status_code)


def idempotent(operation: str) -> Callable[..., Awaitable[IdempotentWrite]]:
    """The dependency for a route honouring ``Idempotency-Key``.

    ``operation`` is formatted with the path parameters (``"purchases:{customer_id}"``): one key
    names one write to one resource, and reusing it elsewhere is a conflict.
    """

    async def dependency(  # async: no thread-pool hop per request
        request: Request,
        session: SessionDep,
        principal: PrincipalDep,
        idempotency_key: Annotated[str | None, Header()] = None,
    ) -> IdempotentWrite:
        return IdempotentWrite(
            session,
            scope=principal.subject,
            operation=operation.format(**request.path_params),
            key=idempotency_key,
        )

    return dependency
