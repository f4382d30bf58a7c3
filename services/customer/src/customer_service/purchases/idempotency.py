"""``Idempotency-Key`` on writes that create money: a replay, or 409 for another body."""

import hashlib
from typing import Any

import orjson
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_libs.problems import Conflict, InvalidField
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
