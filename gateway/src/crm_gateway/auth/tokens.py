"""Access tokens (short-lived JWTs, checked without a database) and opaque secrets."""

import hashlib
import secrets
import time
from dataclasses import dataclass

import jwt

from crm_libs.principal import Principal, Role
from crm_libs.problems import Unauthorized

_ALGORITHM = "HS256"
_AUDIENCE = "crm-api"
_ISSUER = "crm-gateway"
EXPIRED_OR_INVALID = "The access token is missing, expired or invalid"


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_in: int


def issue_access_token(
    principal: Principal, *, version: int, secret: str, ttl_seconds: int
) -> AccessToken:
    """``version`` is the account's token version: a later change of standing outdates it."""
    now = int(time.time())
    claims = {
        "sub": principal.subject,
        "ver": version,
        "role": principal.role.value,
        "store_id": principal.store_id,
        "staff_id": principal.staff_id,
        "iss": _ISSUER,
        "aud": _AUDIENCE,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    return AccessToken(jwt.encode(claims, secret, algorithm=_ALGORITHM), ttl_seconds)


@dataclass(frozen=True)
class VerifiedToken:
    """What a valid access token says: who, under which token version, valid until when."""

    principal: Principal
    version: int
    expires_at: float  # Unix time; the token counts while the clock is before it


def verify_access_token(token: str, *, secret: str) -> VerifiedToken:
    """The principal, the account's token version it was issued under and the expiry, or 401
    (expired, forged, malformed)."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            audience=_AUDIENCE,
            issuer=_ISSUER,
            options={"require": ["exp", "iat", "sub", "role", "ver"]},
        )
        principal = Principal(
            subject=claims["sub"],
            role=Role(claims["role"]),
            store_id=claims.get("store_id"),
            staff_id=claims.get("staff_id"),
        )
        return VerifiedToken(principal, int(claims["ver"]), float(claims["exp"]))
    except (jwt.PyJWTError, KeyError, ValueError) as exc:
        raise Unauthorized(EXPIRED_OR_INVALID) from exc


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def digest(secret: str) -> str:
    """SHA-256 of a random, high-entropy secret (refresh tokens, API keys): no salt needed."""
    return hashlib.sha256(secret.encode()).hexdigest()
