"""The access policy guards every route it declares, and an app it does not match is not built."""

from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Header

from crm_libs.access import AccessPolicy, UndeclaredOperation, guarded, require_declared
from crm_libs.principal import Principal, Role
from crm_libs.problems import install_problem_handlers

roster = APIRouter(prefix="/staff")


@roster.get("")
async def list_staff() -> list[str]:
    return []


@roster.post("/{staff_id}")
async def change_staff(staff_id: str) -> dict[str, str]:
    return {"id": staff_id}


def caller(x_role: Annotated[str, Header()]) -> Principal:
    """A stand-in for the deployable's own principal dependency (signed headers, tokens)."""
    return Principal(subject="u1", role=Role(x_role), store_id="s1")


POLICY = AccessPolicy(
    operations={
        "GET /staff": frozenset(Role),
        "POST /staff/{staff_id}": frozenset({Role.HQ_ADMIN, Role.STORE_MANAGER}),
    }
)


def _app(*routers: APIRouter, policy: AccessPolicy = POLICY, guard: bool = True) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    if guard:
        app.include_router(guarded(routers, policy=policy, principal_dependency=caller))
    else:
        for router in routers:
            app.include_router(router)
    require_declared(app, policy)
    return app


@pytest.mark.parametrize("role", list(Role))
async def test_a_role_the_policy_refuses_gets_403_problem_json(role: Role) -> None:
    transport = httpx.ASGITransport(app=_app(roster))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        read = await client.get("/staff", headers={"x-role": role.value})
        write = await client.post("/staff/st1", headers={"x-role": role.value})
    assert read.status_code == 200
    if role in (Role.HQ_ADMIN, Role.STORE_MANAGER):
        assert write.status_code == 200 and write.json() == {"id": "st1"}
    else:
        assert write.status_code == 403
        assert write.headers["content-type"] == "application/problem+json"
        assert write.json()["title"] == "Forbidden"
        assert "POST /staff/{staff_id}" in write.json()["detail"]


def test_an_undeclared_route_fails_the_build() -> None:
    partial = AccessPolicy(operations={"GET /staff": frozenset(Role)})
    with pytest.raises(UndeclaredOperation, match=r"POST /staff/\{staff_id\}: not declared"):
        _app(roster, policy=partial)


def test_a_router_outside_the_guard_fails_the_build() -> None:
    with pytest.raises(UndeclaredOperation, match="GET /staff: declared but its router is not"):
        _app(roster, guard=False)


def test_a_declaration_no_route_serves_fails_the_build() -> None:
    stale = AccessPolicy(operations={**POLICY.operations, "DELETE /staff/{staff_id}": frozenset()})
    with pytest.raises(UndeclaredOperation, match="DELETE /staff/{staff_id}: declared but no"):
        _app(roster, policy=stale)


def test_a_router_included_under_a_prefix_fails_the_build() -> None:
    # The guard names an operation by the route's own path: a prefix added on inclusion would
    # make it look up another operation than the one served.
    app = FastAPI()
    outer = guarded([], policy=POLICY, principal_dependency=caller)
    outer.include_router(roster, prefix="/v2")
    app.include_router(outer)
    with pytest.raises(UndeclaredOperation, match="included under a prefix"):
        require_declared(app, POLICY)


def test_public_operations_are_declared_and_need_no_guard() -> None:
    sign_in = APIRouter()

    @sign_in.post("/auth/token")
    async def token() -> dict[str, str]:
        return {}

    def build(policy: AccessPolicy) -> None:
        app = FastAPI()
        app.include_router(sign_in)
        app.include_router(guarded([roster], policy=policy, principal_dependency=caller))
        require_declared(app, policy)

    with pytest.raises(UndeclaredOperation, match="POST /auth/token: not declared"):
        build(POLICY)
    build(AccessPolicy(operations=POLICY.operations, public=frozenset({"POST /auth/token"})))


def test_the_guard_documents_its_answers() -> None:
    responses = _app(roster).openapi()["paths"]["/staff/{staff_id}"]["post"]["responses"]
    assert {"401", "403"} <= set(responses)


async def test_principal_dependency_is_resolved_once_for_guard_and_route() -> None:
    calls: list[str] = []

    def counting(x_role: Annotated[str, Header()]) -> Principal:
        calls.append(x_role)
        return caller(x_role)

    router = APIRouter()

    @router.get("/staff")
    async def list_staff(principal: Annotated[Principal, Depends(counting)]) -> str:
        return principal.subject

    app = FastAPI()
    app.include_router(
        guarded(
            [router],
            policy=AccessPolicy(operations={"GET /staff": frozenset(Role)}),
            principal_dependency=counting,
        )
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/staff", headers={"x-role": "staff"})).status_code == 200
    assert calls == ["staff"]
