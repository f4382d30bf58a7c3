"""The caller, as the gateway vouches for it: signed, short-lived, verified by every service."""

from __future__ import annotations

import time
from collections import OrderedDict
from enum import StrEnum
from typing import Annotated

import jwt
from fastapi import Depends, Request
from pydantic import BaseModel, model_validator

from crm_libs.problems import NotFound, Unauthorized

PRINCIPAL_HEADER = "X-CRM-Principal"
_HEADER_KEY = PRINCIPAL_HEADER.lower().encode("latin-1")  # how ASGI spells it
_ALGORITHM = "HS256"
_AUDIENCE = "crm-services"


class Role(StrEnum):
    HQ_ADMIN = "hq_admin"
    STORE_MANAGER = "store_manager"
    STAFF = "staff"
    EXPERT = "expert"
    PARTNER = "partner"


class Principal(BaseModel):
    subject: str
    role: Role
    store_id: str | None = None
    # The roster entry of a signed-in staff member (an account may name one): who registers a
    # file owns it by default. None for partner keys, head office and accounts without one.
    staff_id: str | None = None

    @model_validator(mode="after")
    def _store_unless_head_office(self) -> Principal:
        # Every role but head office is scoped to one store: without it, a store filter built
        # from ``store_scope()`` would be None, which reads as "every store".
        if self.role != Role.HQ_ADMIN and not self.store_id:
            raise ValueError(f"a {self.role.value} principal needs a store_id")
        return self

    @property
    def sees_all_stores(self) -> bool:
        return self.role == Role.HQ_ADMIN

    def store_scope(self) -> str | None:
        """The store every query must be filtered by, or None for head office."""
        return None if self.sees_all_stores else self.store_id

    def require_store(self, store_id: str, *, what: str = "resource") -> None:
        """Refuse another store's resource exactly as an unknown one (never reveal it exists)."""
        if not self.sees_all_stores and store_id != self.store_id:
            raise NotFound(f"No such {what}")


def sign_principal(principal: Principal, *, secret: str, ttl_seconds: int = 60) -> str:
    now = int(time.time())
    claims = {
        "sub": principal.subject,
        "role": principal.role.value,
        "store_id": principal.store_id,
        "staff_id": principal.staff_id,
        "aud": _AUDIENCE,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def verify_principal(token: str, *, secret: str) -> Principal:
    return _verify(token, secret=secret)[0]


def _verify(token: str, *, secret: str) -> tuple[Principal, float]:
    """The principal a token vouches for, and when the token expires (Unix time)."""
    try:
        # A principal without an expiry would be valid forever if it ever leaked.
        claims = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            audience=_AUDIENCE,
            options={"require": ["exp", "iat", "sub"]},
        )
        principal = Principal(
            subject=claims["sub"],
            role=claims["role"],
            store_id=claims.get("store_id"),
            staff_id=claims.get("staff_id"),
        )
        return principal, float(claims["exp"])
    except (jwt.PyJWTError, KeyError, ValueError, TypeError) as exc:
        raise Unauthorized("The forwarded principal is missing, expired or forged") from exc


class VerifiedPrincipals:
    """Tokens already verified, each kept until its own expiry (a small, bounded LRU).

    Decoding and checking the signature is most of what a cheap request costs, and a caller's
    token comes again and again while it is valid (a partner key, a service's own, a client
    reusing its session). Only a token that verified is kept, keyed by the whole token string
    under the secret that verified it, so a forged or altered token never matches an entry and
    an expired one is refused exactly as ``verify_principal`` would.
    """

    def __init__(self, *, max_entries: int = 4096) -> None:
        self._max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], tuple[Principal, float]] = OrderedDict()

    def verify(self, token: str, *, secret: str) -> Principal:
        key = (secret, token)
        entry = self._entries.get(key)
        if entry is not None:
            principal, expires_at = entry
            if time.time() < expires_at:
                self._entries.move_to_end(key)
                return principal
            del self._entries[key]
        principal, expires_at = _verify(token, secret=secret)
        self._entries[key] = (principal, expires_at)
        if len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        return principal

    def clear(self) -> None:
        self._entries.clear()


VERIFIED = VerifiedPrincipals()


async def principal_dependency(request: Request) -> Principal:
    """FastAPI dependency: the verified caller (``X-CRM-Principal``), or 401.

    ``async`` on purpose: a plain ``def`` dependency runs in the thread pool, a hop per request
    that costs more than the check itself. The header is read off the request rather than
    declared as a parameter (it is not part of any service's documented interface): FastAPI's
    parameter machinery costs more per request than the cached check.
    """
    token = None
    for name, value in request.scope["headers"]:
        if name == _HEADER_KEY:
            token = value.decode("latin-1")
            break
    if not token:
        raise Unauthorized("No principal was forwarded with the request")
    return VERIFIED.verify(token, secret=request.app.state.settings.principal_secret)


PrincipalDep = Annotated[Principal, Depends(principal_dependency)]
