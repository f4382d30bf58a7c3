"""Partner API keys: issued by head office or the store's manager, revocable at once."""

import secrets
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_gateway.api_keys.models import ApiKey
from crm_gateway.api_keys.schemas import ApiKeyCreate
from crm_gateway.auth.authenticate import KEY_PREFIX, announce
from crm_gateway.auth.tokens import digest, new_secret
from crm_libs.pagination import PageParams, keyset
from crm_libs.principal import Principal, Role
from crm_libs.problems import Forbidden, NotFound


def _may_manage(caller: Principal, store_id: str) -> bool:
    return caller.role == Role.HQ_ADMIN or (
        caller.role == Role.STORE_MANAGER and caller.store_id == store_id
    )


async def issue(
    session: AsyncSession, *, caller: Principal, key_in: ApiKeyCreate
) -> tuple[ApiKey, str]:
    """A new key for a store; returns the record and the key itself (never stored)."""
    if not _may_manage(caller, key_in.store_id):
        raise Forbidden("Only head office or the store's manager issues its API keys")
    prefix = secrets.token_hex(4)
    secret = new_secret()
    key = ApiKey(
        store_id=key_in.store_id,
        name=key_in.name,
        prefix=prefix,
        key_hash=digest(secret),
        created_by=caller.subject,
    )
    session.add(key)
    await session.flush()
    # Replicas that were asked for this prefix remember it as unknown: they forget that now.
    await announce(session, f"key:{prefix}")
    return key, f"{KEY_PREFIX}{prefix}_{secret}"


async def list_visible(
    session: AsyncSession, *, caller: Principal, page: PageParams
) -> list[ApiKey]:
    if caller.role not in (Role.HQ_ADMIN, Role.STORE_MANAGER):
        raise Forbidden("Only head office and store managers list API keys")
    query = keyset(select(ApiKey), col(ApiKey.id), page)
    if caller.role != Role.HQ_ADMIN:
        query = query.where(col(ApiKey.store_id) == caller.store_id)
    return list((await session.execute(query)).scalars())


async def revoke(session: AsyncSession, *, caller: Principal, key_id: str) -> ApiKey:
    key = await session.get(ApiKey, key_id)
    if key is None or not _may_manage(caller, key.store_id):
        raise NotFound("No such API key")
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        await session.flush()
        await announce(session, f"key:{key.prefix}")
    return key
