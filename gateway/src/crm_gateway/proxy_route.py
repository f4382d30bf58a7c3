"""The catch-all `/api/v1` route: authenticate, rate-limit, forward to the service, audit."""

from __future__ import annotations

import logging

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

log = logging.getLogger(__name__)

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


# A read can be retried safely, so it is refused if it cannot be audited; any other method
# may have changed something that a retry would change again.
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


async def _record_audit(request: Request, principal: Principal, value: str, status: int) -> None:
    """Record what the service disclosed or changed before any of it reaches the client.

    Raises only for a read (the proxy then answers 503 and discloses nothing); a write's entries
    go to the local spool when the database cannot take them, and its real answer is sent.
    """
    entries = audit.entries_from_header(value, caller=principal, status=status)
    # Taken before the insert: a failed session may leave the rows in any state.
    rows = [entry.model_dump(mode="json", exclude={"id"}) for entry in entries]
    try:
        async with request.app.state.sessionmaker() as session, session.begin():
            session.add_all(entries)
    except Exception:
        if request.method in _SAFE_METHODS:
            raise
        log.warning(
            "audit database unavailable after a write; entries spooled",
            extra={"fields": {"path": request.url.path, "status": status}},
        )
        try:
            await request.app.state.audit_spool.keep(rows)
        except Exception:
            # The log is the last record left: it names every entry in full.
            log.exception(
                "audit entries could not be spooled",
                extra={"fields": {"entries": rows}},
            )
