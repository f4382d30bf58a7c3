"""Access tokens already verified, kept until they expire: a client sends the same token with
every request for its whole lifetime, and checking its signature and claims each time was about
7% of the gateway's CPU on the proxy path.

Only the signature, claims and expiry are remembered. Whether the account still stands behind
the token (its version, role, store, status) is checked on every request by the caller, so a
password change, role change or disabling still ends a cached token at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from crm_gateway.auth.tokens import EXPIRED_OR_INVALID, VerifiedToken, verify_access_token
from crm_libs.problems import Unauthorized

# Verified tokens remembered at most (only tokens signed with the gateway's key get in).
MAX_TOKENS = 10_000


class VerifiedTokens:
    def __init__(
        self,
        *,
        secret: str,
        max_tokens: int = MAX_TOKENS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self._max = max_tokens
        self._clock = clock
        self._tokens: dict[str, VerifiedToken] = {}

    def verify(self, token: str) -> VerifiedToken:
        """What ``token`` says, or 401 (expired, forged, malformed), as ``verify_access_token``."""
        cached = self._tokens.get(token)
        if cached is not None:
            if self._clock() < cached.expires_at:
                return cached
            del self._tokens[token]
            raise Unauthorized(EXPIRED_OR_INVALID)
        verified = verify_access_token(token, secret=self._secret)
        if len(self._tokens) >= self._max:
            self._make_room()
        self._tokens[token] = verified
        return verified

    def _make_room(self) -> None:
        """Drop expired tokens, then the oldest kept, down to nine tenths of the bound (so a
        full cache is not scanned on every new token)."""
        now = self._clock()
        self._tokens = {t: v for t, v in self._tokens.items() if now < v.expires_at}
        excess = len(self._tokens) - self._max * 9 // 10
        if excess > 0:
            for token in list(self._tokens)[:excess]:
                del self._tokens[token]

    def __len__(self) -> int:
        return len(self._tokens)
