"""Verified access tokens are remembered until their expiry, and only verified ones."""

import time

import jwt
import pytest

from crm_gateway.auth.token_cache import VerifiedTokens
from crm_gateway.auth.tokens import issue_access_token
from crm_libs.principal import Principal, Role
from crm_libs.problems import Unauthorized

SECRET = "s" * 40
STAFF = Principal(subject="account-1", role=Role.STAFF, store_id="store-1")


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_a_token_is_served_from_memory_until_it_expires() -> None:
    clock = Clock()
    tokens = VerifiedTokens(secret=SECRET, clock=clock)
    token = issue_access_token(STAFF, version=3, secret=SECRET, ttl_seconds=60).token
    first = tokens.verify(token)
    assert (first.principal, first.version) == (STAFF, 3)
    assert tokens.verify(token) is first and len(tokens) == 1
    clock.now = first.expires_at  # its last instant has passed: refused, as jwt would
    with pytest.raises(Unauthorized):
        tokens.verify(token)
    assert len(tokens) == 0


def test_forged_and_malformed_tokens_are_never_remembered() -> None:
    tokens = VerifiedTokens(secret=SECRET)
    good = issue_access_token(STAFF, version=1, secret=SECRET, ttl_seconds=60).token
    claims = jwt.decode(good, options={"verify_signature": False})
    forged = jwt.encode({**claims, "role": "hq_admin"}, "x" * 40, algorithm="HS256")
    for bad in (forged, good + "x", "not-a-jwt"):
        for _ in range(2):
            with pytest.raises(Unauthorized):
                tokens.verify(bad)
    assert len(tokens) == 0


def test_the_memory_is_bounded() -> None:
    tokens = VerifiedTokens(secret=SECRET, max_tokens=10)
    issued = [
        issue_access_token(
            Principal(subject=f"account-{n}", role=Role.HQ_ADMIN),
            version=1,
            secret=SECRET,
            ttl_seconds=60,
        ).token
        for n in range(25)
    ]
    for token in issued:
        tokens.verify(token)
        assert len(tokens) <= 10
    # The newest is kept; an evicted one is simply verified again.
    assert tokens.verify(issued[-1]).principal.subject == "account-24"
    assert tokens.verify(issued[0]).principal.subject == "account-0"
