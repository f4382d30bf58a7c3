"""The verified-principal cache: a repeated token skips the signature check, and nothing else
gets through that verification would refuse (expired, forged, another secret)."""

import inspect
import time

import httpx
import jwt
import pytest
from fastapi import FastAPI

from crm_libs.principal import (
    PRINCIPAL_HEADER,
    Principal,
    PrincipalDep,
    Role,
    VerifiedPrincipals,
    principal_dependency,
    sign_principal,
)
from crm_libs.problems import Unauthorized, install_problem_handlers

SECRET = "s" * 40
STAFF = Principal(subject="u1", role=Role.STAFF, store_id="s1")


def test_a_repeated_token_is_not_decoded_again(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = VerifiedPrincipals()
    token = sign_principal(STAFF, secret=SECRET)
    decodes = 0
    real_decode = jwt.decode

    def counting_decode(*args: object, **kwargs: object) -> object:
        nonlocal decodes
        decodes += 1
        return real_decode(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jwt, "decode", counting_decode)
    assert [cache.verify(token, secret=SECRET) for _ in range(5)] == [STAFF] * 5
    assert decodes == 1


def test_a_cached_token_is_refused_once_it_expires() -> None:
    cache = VerifiedPrincipals()
    token = sign_principal(STAFF, secret=SECRET, ttl_seconds=1)
    assert cache.verify(token, secret=SECRET) == STAFF
    expires_at = jwt.decode(token, options={"verify_signature": False})["exp"]
    time.sleep(max(0.0, expires_at - time.time()) + 0.05)
    with pytest.raises(Unauthorized):
        cache.verify(token, secret=SECRET)


def test_a_forged_token_is_refused_while_the_genuine_one_is_cached() -> None:
    cache = VerifiedPrincipals()
    genuine = sign_principal(STAFF, secret=SECRET)
    cache.verify(genuine, secret=SECRET)
    head, payload, signature = genuine.split(".")
    claims = jwt.decode(genuine, options={"verify_signature": False})
    # Same header and signature, a payload claiming head office.
    raised = jwt.encode({**claims, "role": "hq_admin", "store_id": None}, "x" * 40).split(".")[1]
    with pytest.raises(Unauthorized):
        cache.verify(f"{head}.{raised}.{signature}", secret=SECRET)
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    with pytest.raises(Unauthorized):
        cache.verify(f"{head}.{payload}.{flipped}", secret=SECRET)


def test_a_token_cached_under_one_secret_is_refused_under_another() -> None:
    cache = VerifiedPrincipals()
    token = sign_principal(STAFF, secret=SECRET)
    cache.verify(token, secret=SECRET)
    with pytest.raises(Unauthorized):
        cache.verify(token, secret="t" * 40)


def test_the_cache_is_bounded() -> None:
    cache = VerifiedPrincipals(max_entries=3)
    tokens = [
        sign_principal(Principal(subject=f"u{i}", role=Role.HQ_ADMIN), secret=SECRET)
        for i in range(10)
    ]
    for token in tokens:
        cache.verify(token, secret=SECRET)
    assert len(cache._entries) == 3


async def test_the_dependency_runs_on_the_event_loop_not_in_the_thread_pool() -> None:
    # A plain ``def`` dependency would be sent to the thread pool on every request.
    assert inspect.iscoroutinefunction(principal_dependency)
    app = FastAPI()
    app.state.settings = type("S", (), {"principal_secret": SECRET})()
    install_problem_handlers(app)

    @app.get("/me")
    async def me(principal: PrincipalDep) -> dict[str, str]:
        return {"subject": principal.subject}

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://svc"
    ) as client:
        ok = await client.get(
            "/me", headers={PRINCIPAL_HEADER: sign_principal(STAFF, secret=SECRET)}
        )
        missing = await client.get("/me")
        forged = await client.get("/me", headers={PRINCIPAL_HEADER: "a.b.c"})
    assert ok.json() == {"subject": "u1"}
    assert [missing.status_code, forged.status_code] == [401, 401]
