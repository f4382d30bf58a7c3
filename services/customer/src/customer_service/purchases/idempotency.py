"""``Idempotency-Key`` on writes that create money: a replay, or 409 for another body.

Routers take ``Depends(idempotent("..."))`` and hand it their write and a driver connection
(``crm_libs.db.request_connection``); with a key, the lookup, the write and the storing of the
first answer happen in one transaction on it.
"""

import hashlib
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import orjson
from fastapi import Header, Request
from fastapi.responses import Response
from pydantic import BaseModel

from crm_libs.problems import Conflict, InvalidField
from customer_service.deps import PrincipalDep

MAX_KEY_LENGTH = 200

# Held to the end of the transaction: a second request with the same key waits, then replays.
_LOCK_KEY = "SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))"
# The answer as the text it was stored as (read after the lock: a snapshot of its own).
_FIND = """
    SELECT request_hash, status_code, body::text AS body FROM idempotency_record
    WHERE scope = $1::text AND key = $2::text
"""
_REMEMBER = """
    INSERT INTO idempotency_record (scope, key, request_hash, status_code, body)
    VALUES ($1::text, $2::text, $3::text, $4::int, $5::text::jsonb)
"""


def request_fingerprint(route: str, body: Any) -> str:
    return hashlib.sha256(
        route.encode() + b"\n" + orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    ).hexdigest()


class IdempotentWrite:
    """One route's write, done once per ``Idempotency-Key`` and replayed after that."""

    def __init__(self, *, scope: str, operation: str, key: str | None) -> None:
        self._scope = scope
        self._operation = operation
        self._key = key

    async def respond(
        self,
        conn: Any,
        request_body: BaseModel,
        write: Callable[[], Awaitable[bytes]],
        *,
        status_code: int,
    ) -> Response:
        """``write()``'s JSON answer; with a key already used for this body, the stored one.

        Without a key the write commits as it goes (``write`` must then be one atomic
        statement's worth, or open its own transaction).
        """
        if self._key is None:
            return _json(await write(), status_code)
        key = self._key
        if not key or len(key) > MAX_KEY_LENGTH:
            raise InvalidField("Idempotency-Key", f"must be 1 to {MAX_KEY_LENGTH} characters")
        fingerprint = request_fingerprint(self._operation, request_body.model_dump(mode="json"))
        async with conn.transaction():
            await conn.execute(_LOCK_KEY, f"{self._scope}\n{key}")
            replay = await conn.fetchrow(_FIND, self._scope, key)
            if replay is not None:
                if replay["request_hash"] != fingerprint:
                    raise Conflict("This Idempotency-Key was already used with a different request")
                return _json(replay["body"].encode(), replay["status_code"])
            body = await write()
            await conn.execute(_REMEMBER, self._scope, key, fingerprint, status_code, body.decode())
        return _json(body, status_code)


def _json(body: bytes, status_code: int) -> Response:
    return Response(body, status_code=status_code, media_type="application/json")


def idempotent(operation: str) -> Callable[..., Awaitable[IdempotentWrite]]:
    """The dependency for a route honouring ``Idempotency-Key``.

    ``operation`` is formatted with the path parameters (``"purchases:{customer_id}"``): one key
    names one write to one resource, and reusing it elsewhere is a conflict.
    """

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
