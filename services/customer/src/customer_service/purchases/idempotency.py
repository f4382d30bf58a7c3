"""``Idempotency-Key`` on writes that create money: a replay, or 409 for another body
(crm_libs.idempotency, over the customer service's own ``idempotency_record``).

Routers take ``Depends(idempotent("..."))`` and hand it their write and a driver connection
(``crm_libs.db.request_connection``); with a key, the lookup, the write and the storing of the
first answer happen in one transaction on it.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.responses import Response
from pydantic import BaseModel

from crm_libs import idempotency
from crm_libs.idempotency import StoredAnswer, json_response

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


class _ConnectionBook:
    """``idempotency_record`` on a driver connection, inside the transaction it holds."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def lock(self, name: str) -> None:
        await self._conn.execute(_LOCK_KEY, name)

    async def find(self, scope: str, key: str) -> StoredAnswer | None:
        row = await self._conn.fetchrow(_FIND, scope, key)
        return None if row is None else StoredAnswer(*row)

    async def remember(self, scope: str, key: str, answer: StoredAnswer) -> None:
        await self._conn.execute(
            _REMEMBER, scope, key, answer.request_hash, answer.status_code, answer.body
        )


class IdempotentWrite(idempotency.IdempotentWrite):
    """One route's write, done once per ``Idempotency-Key`` and replayed after that."""

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
        if self.key is None:
            return json_response(await write(), status_code)
        async with conn.transaction():
            return await self.once(
                _ConnectionBook(conn), request_body, write, status_code=status_code
            )


# The dependency for a route honouring ``Idempotency-Key``: ``operation`` is formatted with the
# path parameters (``"purchases:{customer_id}"``), so one key names one write to one resource.
idempotent = idempotency.idempotent_for(IdempotentWrite)
