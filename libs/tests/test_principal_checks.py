"""A forwarded principal must expire, and every role but head office must name its store."""

import time

import jwt
import pytest
from pydantic import ValidationError

from crm_libs.principal import Principal, Role, sign_principal, verify_principal
from crm_libs.problems import Unauthorized

SECRET = "s" * 40


def _token(**claims: object) -> str:
    now = int(time.time())
    base = {"sub": "u1", "role": "staff", "store_id": "s1", "aud": "crm-services", "iat": now}
    return jwt.encode({**base, **claims}, SECRET, algorithm="HS256")


def test_a_principal_without_expiry_is_refused() -> None:
    with pytest.raises(Unauthorized):
        verify_principal(_token(), secret=SECRET)
    assert verify_principal(_token(exp=int(time.time()) + 60), secret=SECRET).store_id == "s1"


def test_a_principal_without_issue_time_or_subject_is_refused() -> None:
    now = int(time.time())
    no_iat = jwt.encode(
        {"sub": "u1", "role": "staff", "store_id": "s1", "aud": "crm-services", "exp": now + 60},
        SECRET,
        algorithm="HS256",
    )
    no_sub = jwt.encode(
        {"role": "staff", "store_id": "s1", "aud": "crm-services", "iat": now, "exp": now + 60},
        SECRET,
        algorithm="HS256",
    )
    for token in (no_iat, no_sub):
        with pytest.raises(Unauthorized):
            verify_principal(token, secret=SECRET)


@pytest.mark.parametrize("role", [r for r in Role if r != Role.HQ_ADMIN])
def test_a_store_bound_principal_without_a_store_is_refused(role: Role) -> None:
    exp = int(time.time()) + 60
    for store in (None, ""):
        with pytest.raises(Unauthorized):
            verify_principal(_token(role=role.value, store_id=store, exp=exp), secret=SECRET)
        with pytest.raises(ValidationError):
            Principal(subject="u1", role=role, store_id=store)


def test_head_office_needs_no_store() -> None:
    hq = Principal(subject="a", role=Role.HQ_ADMIN)
    assert verify_principal(sign_principal(hq, secret=SECRET), secret=SECRET) == hq
