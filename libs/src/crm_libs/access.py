"""Function-level authorization (OWASP API5): which roles may call each operation, as data.

Each deployable declares one policy, ``"METHOD /path" → roles allowed``, beside its
field-visibility policy. Every route is guarded by it, and an app with a route its policy does not
declare (or does not guard) refuses to start: a new route cannot be forgotten.

The policy answers "may this role do this at all"; store scope stays with the services
(``Principal.require_store``): an allowed role still reaches only its own store, where another
store's resource is a 404, while a role the policy refuses is a 403 before anything is looked up.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.routing import APIRoute, iter_route_contexts

from crm_libs.principal import Principal, Role
from crm_libs.problems import Forbidden, problem_responses

EVERY_ROLE = frozenset(Role)


def operation(method: str, path: str) -> str:
    """The policy's name for a route: ``"POST /staff/{staff_id}"``, its path as in OpenAPI."""
    return f"{method.upper()} {path}"


@dataclass(frozen=True)
class AccessPolicy:
    """One deployable's declared policy: each operation and the roles that may call it."""

    operations: Mapping[str, frozenset[Role]]
    # Called before anyone is signed in (sign-in itself): declared, and never guarded.
    public: frozenset[str] = field(default_factory=frozenset)

    def allows(self, op: str, role: Role) -> bool:
        """Whether ``role`` may call ``op``; an undeclared operation allows nobody."""
        return role in self.operations.get(op, frozenset())


class UndeclaredOperation(RuntimeError):
    """The app's routes and its access policy disagree (raised while the app is built)."""


def _guard(policy: AccessPolicy, principal_dependency: Callable[..., Any]) -> Callable[..., Any]:
    # No `from __future__ import annotations` here: FastAPI must see this closure's dependency.
    async def authorize(
        request: Request, principal: Annotated[Principal, Depends(principal_dependency)]
    ) -> None:
        # The matched route's own path: require_declared() makes sure it is the path served.
        route = request.scope.get("route")
        op = operation(request.method, getattr(route, "path", ""))
        if not policy.allows(op, principal.role):
            raise Forbidden(f"The {principal.role.value} role may not call {op}")

    authorize.access_policy = policy  # type: ignore[attr-defined]  # found by require_declared()
    return authorize


def guarded(
    routers: Iterable[APIRouter],
    *,
    policy: AccessPolicy,
    principal_dependency: Callable[..., Any],
) -> APIRouter:
    """One router holding ``routers``, each of whose routes answers 403 to a role ``policy``
    does not allow. ``principal_dependency`` is the deployable's own dependency for the caller
    (FastAPI resolves it once per request, for the guard and the route alike)."""
    combined = APIRouter(
        dependencies=[Depends(_guard(policy, principal_dependency))],
        responses=problem_responses(401, 403),
    )
    for router in routers:
        combined.include_router(router)
    return combined


def require_declared(app: FastAPI, policy: AccessPolicy) -> None:
    """Refuse to build an app whose API routes and ``policy`` differ in any way: a route not
    declared, declared but not guarded, or a declaration no route serves."""
    problems: list[str] = []
    served: set[str] = set()
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue  # health checks, metrics: infrastructure, not operations
        if context.path != route.path:
            problems.append(f"{route.path}: included under a prefix the guard would not see")
        guards = [d.call for d in context.dependant.dependencies]
        is_guarded = any(getattr(g, "access_policy", None) is policy for g in guards)
        for method in sorted(route.methods or ()):
            op = operation(method, route.path)
            served.add(op)
            if op in policy.public:
                continue
            if op not in policy.operations:
                problems.append(f"{op}: not declared in the access policy")
            elif not is_guarded:
                problems.append(f"{op}: declared but its router is not guarded")
    problems += [
        f"{op}: declared but no route serves it"
        for op in sorted((set(policy.operations) | policy.public) - served)
    ]
    if problems:
        raise UndeclaredOperation("Access policy and routes differ:\n" + "\n".join(problems))
