"""Who is calling: a bearer token (checked without the database) or a partner's API key.

Every replica holds each account's standing (token version, role, store, active) in memory,
loaded at start and again whenever its LISTEN connection comes back; a change anywhere is
announced with NOTIFY. A token issued under another version, role or store is refused, so a
password change, role change, store move or disabling ends older tokens on every replica, also
after a restart. API keys are looked up by prefix once and then served from memory; unknown
prefixes are remembered for a while so made-up keys do not reach the database each time.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from fastapi import Request
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from crm_gateway.accounts.models import Account
from crm_gateway.api_keys.models import ApiKey
from crm_gateway.auth.token_cache import VerifiedTokens
from crm_gateway.auth.tokens import digest
from crm_gateway.config import Settings
from crm_libs.notify import listen_forever
from crm_libs.principal import Principal, Role
from crm_libs.problems import Unauthorized

log = logging.getLogger(__name__)

CREDENTIALS_CHANNEL = "crm_credentials"
KEY_PREFIX = "crm_"
# Beyond this many remembered unknown prefixes the memory is cleared (a flood of made-up keys).
_MAX_UNKNOWN = 100_000


@dataclass(frozen=True)
class Standing:
    """What an account's access tokens must still match."""

    version: int
    role: str
    store_id: str | None
    active: bool

    @classmethod
    def of(cls, account: Account) -> Standing:
        active = account.status == "active"
        return cls(account.token_version, account.role, account.store_id, active)

    def admits(self, principal: Principal, version: int) -> bool:
        return (
            self.active
            and version == self.version
            and principal.role.value == self.role
            and principal.store_id == self.store_id
        )


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
        self._tokens = VerifiedTokens(secret=settings.jwt_secret)
        self._keys: dict[str, CachedKey] = {}
        # Prefixes no key has, and when that was found out.
        self._unknown: dict[str, float] = {}
        # Counts key notifications: a lookup that raced one does not remember "unknown".
        self._key_changes = 0
        self._standing: dict[str, Standing] = {}
        self._last_used: dict[str, datetime] = {}
        self._loading: dict[str, asyncio.Future[CachedKey | None]] = {}
        self._loading_accounts: dict[str, asyncio.Future[Standing | None]] = {}
        self._reload: asyncio.Task[None] | None = None
        self._loaded = asyncio.Event()

    async def principal_for(self, request: Request) -> Principal:
        authorization = request.headers.get("authorization")
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token:
                raise Unauthorized("Use 'Authorization: Bearer <token>'")
            verified = self._tokens.verify(token.strip())
            principal = verified.principal
            # On every request, cached token or not: a change of standing ends it at once.
            standing = self._standing.get(principal.subject)
            if standing is None:
                standing = await self._load_account_once(principal.subject)
            if standing is None or not standing.admits(principal, verified.version):
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
        unknown_since = self._unknown.get(prefix)
        if (
            unknown_since is not None
            and time.monotonic() - unknown_since < self._settings.api_key_unknown_cache_seconds
        ):
            raise Unauthorized("The API key is not valid")
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
        changes_before = self._key_changes
        async with self._sessionmaker() as session:
            key = (
                await session.execute(select(ApiKey).where(col(ApiKey.prefix) == prefix))
            ).scalar_one_or_none()
        if key is None:
            self._keys.pop(prefix, None)
            if self._key_changes == changes_before:
                if len(self._unknown) >= _MAX_UNKNOWN:
                    self._unknown.clear()
                self._unknown[prefix] = time.monotonic()
            return None
        cached = CachedKey(
            key.id, key.store_id, key.key_hash, key.revoked_at is not None, time.monotonic()
        )
        self._keys[prefix] = cached
        return cached

    def forget_key(self, prefix: str) -> None:
        self._key_changes += 1
        self._keys.pop(prefix, None)
        self._unknown.pop(prefix, None)

    async def _load_account_once(self, account_id: str) -> Standing | None:
        """An account this replica has not heard of yet (opened a moment ago elsewhere)."""
        pending = self._loading_accounts.get(account_id)
        if pending is None:
            pending = asyncio.ensure_future(self._load_account(account_id))
            self._loading_accounts[account_id] = pending
            pending.add_done_callback(lambda _: self._loading_accounts.pop(account_id, None))
        return await asyncio.shield(pending)

    async def _load_account(self, account_id: str) -> Standing | None:
        async with self._sessionmaker() as session:
            account = await session.get(Account, account_id)
        if account is None:
            return None
        self._learn(account.id, Standing.of(account))
        return self._standing[account.id]

    def _learn(self, account_id: str, standing: Standing) -> None:
        """Keep the newest standing: versions only grow, whatever order news arrives in."""
        known = self._standing.get(account_id)
        if known is None or standing.version >= known.version:
            self._standing[account_id] = standing

    async def load_accounts(self) -> None:
        """Every account's standing (at start, and after the LISTEN connection was down)."""
        async with self._sessionmaker() as session:
            accounts = (await session.execute(select(Account))).scalars().all()
        for account in accounts:
            self._learn(account.id, Standing.of(account))

    def _reload_accounts(self) -> None:
        """Notifications sent while the LISTEN connection was down are lost: reload them all."""

        async def reload() -> None:
            try:
                await self.load_accounts()
                self._loaded.set()
            except Exception:
                log.exception("account standings could not be reloaded")

        self._reload = asyncio.ensure_future(reload())

    async def wait_loaded(self, *, timeout: float) -> None:
        """Until every standing was loaded after the LISTEN connection was opened (so no change
        can fall between the two); ``run`` must be running."""
        await asyncio.wait_for(self._loaded.wait(), timeout)

    async def run(self) -> None:
        """Listen for credential changes and record when keys were last used, until cancelled."""
        listener = asyncio.create_task(
            listen_forever(
                self._settings.database_url,
                CREDENTIALS_CHANNEL,
                self._on_notify,
                on_connect=self._reload_accounts,
            )
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
            news = orjson.loads(value)
            self._learn(
                news["id"],
                Standing(news["version"], news["role"], news["store_id"], news["active"]),
            )


async def announce(session: AsyncSession, payload: str) -> None:
    """Tell every gateway replica (delivered when the transaction commits)."""
    await session.execute(
        text("SELECT pg_notify(:channel, :payload)"),
        {"channel": CREDENTIALS_CHANNEL, "payload": payload},
    )


async def announce_account(session: AsyncSession, account: Account) -> None:
    """Tell every replica an account's new standing (its older tokens stop counting)."""
    standing = Standing.of(account)
    news = {
        "id": account.id,
        "version": standing.version,
        "role": standing.role,
        "store_id": standing.store_id,
        "active": standing.active,
    }
    await announce(session, "account:" + orjson.dumps(news).decode())
