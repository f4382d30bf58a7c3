"""Who is calling: a bearer token (checked without the database) or a partner's API key.

API keys are looked up by prefix once and then served from memory; a revocation or an account
change anywhere is announced with NOTIFY, so every gateway replica forgets it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import Request
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from crm_gateway.accounts.models import Account
from crm_gateway.api_keys.models import ApiKey
from crm_gateway.auth.tokens import digest, verify_access_token
from crm_gateway.config import Settings
from crm_libs.notify import listen_forever
from crm_libs.principal import Principal, Role
from crm_libs.problems import Unauthorized

CREDENTIALS_CHANNEL = "crm_credentials"
KEY_PREFIX = "crm_"


@dataclass(frozen=True)
class CachedKey:
    id: str
    store_id: str
    key_hash: str
    revoked: bool
    loaded_at: float


def split_api_key(raw: str) -> tuple[str, str] | None:
    """``crm_<prefix>_<secret>`` → (prefix, secret)."""
    if not raw.startswith(KEY_PREFIX):
        return None
    prefix, sep, secret = raw[len(KEY_PREFIX) :].partition("_")
    if not sep or len(prefix) != 8 or not secret:
        return None
    return prefix, secret


class Authenticator:
    def __init__(
        self, *, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        self._settings = settings
        self._sessionmaker = sessionmaker
        self._keys: dict[str, CachedKey] = {}
        # Tokens of these accounts issued at or before the time given no longer count.
        self._revoked_before: dict[str, float] = {}
        self._last_used: dict[str, datetime] = {}
        self._loading: dict[str, asyncio.Future[CachedKey | None]] = {}

    async def principal_for(self, request: Request) -> Principal:
        authorization = request.headers.get("authorization")
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token:
                raise Unauthorized("Use 'Authorization: Bearer <token>'")
            principal, issued_at = verify_access_token(
                token.strip(), secret=self._settings.jwt_secret
            )
            if issued_at <= self._revoked_before.get(principal.subject, -1):
                raise Unauthorized("The access token was revoked; sign in again")
            return principal
        api_key = request.headers.get("x-api-key")
        if api_key:
            return await self._principal_for_key(api_key)
        raise Unauthorized("Sign in for a bearer token, or send a partner API key")

    async def _principal_for_key(self, raw: str) -> Principal:
        parts = split_api_key(raw)
        if parts is None:
            raise Unauthorized("The API key is not valid")
        prefix, secret = parts
        cached = self._keys.get(prefix)
        if (
            cached is None
            or time.monotonic() - cached.loaded_at > self._settings.api_key_cache_seconds
        ):
            cached = await self._load_key_once(prefix)
        if (
            cached is None
            or cached.revoked
            or not hmac.compare_digest(digest(secret), cached.key_hash)
        ):
            raise Unauthorized("The API key is not valid")
        self._last_used[cached.id] = datetime.now(UTC)
        return Principal(subject=f"key:{cached.id}", role=Role.PARTNER, store_id=cached.store_id)

    async def _load_key_once(self, prefix: str) -> CachedKey | None:
        """One database lookup per key at a time; concurrent requests wait for its result."""
        pending = self._loading.get(prefix)
        if pending is None:
            pending = asyncio.ensure_future(self._load_key(prefix))
            self._loading[prefix] = pending
            pending.add_done_callback(lambda _: self._loading.pop(prefix, None))
        return await asyncio.shield(pending)

    async def _load_key(self, prefix: str) -> CachedKey | None:
        async with self._sessionmaker() as session:
            key = (
                await session.execute(select(ApiKey).where(col(ApiKey.prefix) == prefix))
            ).scalar_one_or_none()
        if key is None:
            self._keys.pop(prefix, None)
            return None
        cached = CachedKey(
            key.id, key.store_id, key.key_hash, key.revoked_at is not None, time.monotonic()
        )
        self._keys[prefix] = cached
        return cached

    def forget_key(self, prefix: str) -> None:
        self._keys.pop(prefix, None)

    def revoke_tokens_of(self, account_id: str, *, before: float | None = None) -> None:
        self._revoked_before[account_id] = before if before is not None else time.time()

    async def load_disabled_accounts(self) -> None:
        async with self._sessionmaker() as session:
            rows = await session.execute(
                select(col(Account.id)).where(col(Account.status) != "active")
            )
            for account_id in rows.scalars():
                self._revoked_before[account_id] = float("inf")

    async def run(self) -> None:
        """Listen for credential changes and record when keys were last used, until cancelled."""
        await self.load_disabled_accounts()
        listener = asyncio.create_task(
            listen_forever(self._settings.database_url, CREDENTIALS_CHANNEL, self._on_notify)
        )
        try:
            while True:
                await asyncio.sleep(5)
                await self.flush_last_used()
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener
            with contextlib.suppress(Exception):
                await self.flush_last_used()

    async def flush_last_used(self) -> None:
        used, self._last_used = self._last_used, {}
        if not used:
            return
        async with self._sessionmaker() as session, session.begin():
            for key_id, at in used.items():
                await session.execute(
                    update(ApiKey).where(col(ApiKey.id) == key_id).values(last_used_at=at)
                )

    def _on_notify(self, payload: str) -> None:
        kind, _, value = payload.partition(":")
        if kind == "key":
            self.forget_key(value)
        elif kind == "account":
            account_id, _, at = value.partition("@")
            self.revoke_tokens_of(account_id, before=float(at) if at else None)


async def announce(session: AsyncSession, payload: str) -> None:
    """Tell every gateway replica (delivered when the transaction commits)."""
    await session.execute(
        text("SELECT pg_notify(:channel, :payload)"),
        {"channel": CREDENTIALS_CHANNEL, "payload": payload},
    )
