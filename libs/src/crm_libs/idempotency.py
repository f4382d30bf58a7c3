"""``Idempotency-Key`` on writes a client may retry: the same key and body replay the first
answer, another body is 409, a key that is empty or too long is 422.

Each service keeps the first answers in a table of its own (its data stays its own): it hands
:meth:`IdempotentWrite.once` an :class:`AnswerBook` over that table, on the transaction the
write runs in. The key's lock, the lookup, the write and the stored answer are then one
transaction: a second request with the same key waits for the first to commit, then replays it.
"""

import hashlib
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, NamedTuple, Protocol, TypeVar

import orjson
from fastapi import Header, Request
from fastapi.responses import Response
from pydantic import BaseModel

from crm_libs.principal import PrincipalDep
from crm_libs.problems import Conflict, InvalidField

MAX_KEY_LENGTH = 200


class StoredAnswer(NamedTuple):
    request_hash: str
    status_code: int
    body: str  # the JSON as stored, replayed byte for byte


class AnswerBook(Protocol):
    """One service's table of first answers, on the transaction the keyed write runs in."""

    async def lock(self, name: str) -> None:
        """Hold ``name`` to the end of the transaction (a second request waits, then replays)."""

    async def find(self, scope: str, key: str) -> StoredAnswer | None: ...

    async def remember(self, scope: str, key: str, answer: StoredAnswer) -> None: ...


def request_fingerprint(operation: str, body: Any) -> str:
    """The write and its body, compared when a key comes again."""
    return hashlib.sha256(
        operation.encode() + b"\n" + orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    ).hexdigest()


def json_response(body: bytes, status_code: int) -> Response:
    return Response(body, status_code=status_code, media_type="application/json")


class IdempotentWrite:
    """One route's write, done once per ``Idempotency-Key`` and replayed after that."""

    def __init__(self, *, scope: str, operation: str, key: str | None) -> None:
        self.scope = scope
        self.operation = operation
        self.key = key

    async def once(
        self,
        book: AnswerBook,
        request_body: BaseModel,
        write: Callable[[], Awaitable[bytes]],
        *,
        status_code: int,
    ) -> Response:
        """``write()``'s JSON answer; with a key already used for this body, the stored one."""
        if self.key is None:
            return json_response(await write(), status_code)
        key = self.key
        if not key or len(key) > MAX_KEY_LENGTH:
            raise InvalidField("Idempotency-Key", f"must be 1 to {MAX_KEY_LENGTH} characters")
        fingerprint = request_fingerprint(self.operation, request_body.model_dump(mode="json"))
        await book.lock(f"{self.scope}\n{key}")
        found = await book.find(self.scope, key)
        if found is not None:
            if found.request_hash != fingerprint:
                raise Conflict("This Idempotency-Key was already used with a different request")
            return json_response(found.body.encode(), found.status_code)
        body = await write()
        await book.remember(self.scope, key, StoredAnswer(fingerprint, status_code, body.decode()))
        return json_response(body, status_code)


Write = TypeVar("Write", bound=IdempotentWrite)


def idempotent_for(
    kind: Callable[..., Write],
) -> Callable[[str], Callable[..., Awaitable[Write]]]:
    """A service's ``idempotent(operation)``: the dependency for a route honouring
    ``Idempotency-Key``, giving the service's ``kind`` of :class:`IdempotentWrite`.

    ``operation`` is formatted with the path parameters (``"purchases:{customer_id}"``): one key
    names one write to one resource, and reusing it elsewhere is a conflict. The key is the
    caller's own (scoped by the principal's subject)."""

    def idempotent(operation: str) -> Callable[..., Awaitable[Write]]:
        async def dependency(  # async: no thread-pool hop per request
            request: Request,
            principal: PrincipalDep,
            idempotency_key: Annotated[str | None, Header()] = None,
        ) -> Write:
            return kind(
                scope=principal.subject,
                operation=operation.format(**request.path_params),
                key=idempotency_key,
            )

        return dependency

    return idempotent
