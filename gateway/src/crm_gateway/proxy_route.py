"""The catch-all `/api/v1` route: authenticate, rate-limit, forward to the service, audit."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from crm_gateway.audit import service as audit
from crm_gateway.config import Settings
from crm_gateway.principal_forwarding import PrincipalSigner
from crm_gateway.proxy import forward
from crm_gateway.ratelimit import RateLimiter
from crm_gateway.routes import API_PREFIX, owner_of
from crm_libs.principal import Principal, Role
from crm_libs.problems import ProblemError, problem_response

PROXY_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def proxy_router(
    settings: Settings, *, upstreams: dict[str, str], signer: PrincipalSigner
) -> APIRouter:
    """Every ``/api/v1`` path the gateway does not answer itself goes to its service."""
    router = APIRouter(include_in_schema=False)
    account_limiter = RateLimiter(settings.rate_limit)
    key_limiter = RateLimiter(settings.api_key_rate_limit)

    @router.api_route(API_PREFIX + "/{path:path}", methods=PROXY_METHODS)
    async def proxy(path: str, request: Request) -> Response:
        service_path = "/" + path
        service = owner_of(service_path)
        if service is None:
            return problem_response(404, "Not found", f"No route for {API_PREFIX}{service_path}")
        principal = await request.app.state.authenticator.principal_for(request)
        limiter = key_limiter if principal.role == Role.PARTNER else account_limiter
        retry_after = await limiter.retry_after(principal.subject)
        if retry_after is not None:
            raise ProblemError(
                "Too many requests for this account or key",
                status=429,
                title="Rate limited",
                headers={"Retry-After": str(retry_after)},
            )

        async def record_audit(value: str, status: int) -> None:
            await _record_audit(request, principal, value, status)

        return await forward(
            request.app.state.client,
            request,
            base_url=upstreams[service],
            path=service_path,
            service=service,
            principal_token=signer.token_for(principal),
            request_id=request.scope["state"]["request_id"],
            audit_header=audit.AUDIT_HEADER,
            audit=record_audit,
        )

    return router


async def _record_audit(request: Request, principal: Principal, value: str, status: int) -> None:
    async with request.app.state.sessionmaker() as session, session.begin():
        for entry in audit.parse_header(value):
            await audit.record(
                session,
                caller=principal,
                action=str(entry.get("action", "read")),
                resource=str(entry.get("resource", "")),
                customer_id=entry.get("customer_id"),
                fields=[str(f) for f in entry.get("fields", [])],
                status=status,
            )
