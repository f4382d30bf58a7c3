"""The principal the gateway vouches for, signed for the services (which verify it themselves)."""

from __future__ import annotations

import time

from crm_libs.principal import Principal, sign_principal


class PrincipalSigner:
    """Signs principals, reusing a token for half its lifetime so the hot path stays cheap."""

    def __init__(self, *, secret: str, ttl_seconds: int) -> None:
        self._secret = secret
        self._ttl = ttl_seconds
        self._cache: dict[tuple[str, str, str | None, str | None], tuple[float, str]] = {}

    def token_for(self, principal: Principal) -> str:
        # Everything the token says is in the key: an account re-linked to another roster entry
        # must not be forwarded under the old one for the rest of the cached lifetime.
        key = (principal.subject, principal.role.value, principal.store_id, principal.staff_id)
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached and cached[0] > now:
            return cached[1]
        token = sign_principal(principal, secret=self._secret, ttl_seconds=self._ttl)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (now + self._ttl / 2, token)
        return token
