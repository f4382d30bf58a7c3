"""Outside development the gateway refuses to start with missing or default secrets."""

import pytest
from pydantic import ValidationError

from crm_gateway.config import Settings
from crm_libs.settings import DEV_BOOTSTRAP_ADMIN_PASSWORD

PRIVATE = {
    "principal_secret": "p" * 40,
    "jwt_secret": "j" * 40,
    "bootstrap_admin_password": "a private admin password",
}


@pytest.mark.parametrize("missing", ["principal_secret", "jwt_secret", "bootstrap_admin_password"])
def test_production_refuses_default_secrets(missing: str) -> None:
    values = {k: v for k, v in PRIVATE.items() if k != missing}
    with pytest.raises(ValidationError, match=f"CRM_{missing.upper()}"):
        Settings(environment="production", **values)


def test_production_refuses_the_development_admin_password() -> None:
    values = {**PRIVATE, "bootstrap_admin_password": DEV_BOOTSTRAP_ADMIN_PASSWORD}
    with pytest.raises(ValidationError):
        Settings(environment="production", **values)


def test_production_starts_with_private_secrets_and_development_with_defaults() -> None:
    assert Settings(environment="production", **PRIVATE).environment == "production"
    assert Settings(environment="development").jwt_secret


def test_short_secrets_are_refused_everywhere() -> None:
    with pytest.raises(ValidationError):
        Settings(jwt_secret="short")
    with pytest.raises(ValidationError):
        Settings(bootstrap_admin_password="short")


def test_rate_limiter_counts_per_identity_and_says_when_to_retry() -> None:
    from crm_gateway.ratelimit import RateLimiter

    limiter = RateLimiter("3/minute")
    assert [limiter.retry_after("a") for _ in range(3)] == [None, None, None]
    retry = limiter.retry_after("a")
    assert retry is not None and 1 <= retry <= 60
    assert limiter.retry_after("b") is None
