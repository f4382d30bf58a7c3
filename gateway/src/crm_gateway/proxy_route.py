"""The `/api/v1` paths the services answer: authenticate, rate-limit, forward, audit.

The hot path of the whole platform, so it runs as plain ASGI before the framework's router:
matching every route, solving dependencies and wrapping the response cost about a fifth of the
gateway's CPU per proxied request. Only paths a service owns are taken; the gateway's own routes
and unknown paths go on to the router as before.
"""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm_gateway.audit import service as audit
from crm_gateway.client_address import client_address
from crm_gateway.config import Settings
from crm_gateway.principal_forwarding import PrincipalSigner
from crm_gateway.proxy import forward
from crm_gateway.ratelimit import RateLimiter
from crm_gateway.routes import API_PREFIX, callback_owner, owner_of
from crm_libs.metrics import HTTP_LATENCY, HTTP_REQUESTS
from crm_libs.principal import Principal, Role
from crm_libs.problems import ProblemError, problem_response

log = logging.getLogger(__name__)

PROXY_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
_METHODS = frozenset(PROXY_METHODS)
_PREFIX = API_PREFIX + "/"
# The route template proxied requests are counted under in the metrics (also the unrouted
# paths' route, so one series holds what the metrics middleware counted before).
PROXY_TEMPLATE = API_PREFIX + "/{path:path}"


class ProxyMiddleware:
    """Answers every request for a path a service owns; passes everything else on."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        upstreams: dict[str, str],
        signer: PrincipalSigner,
    ) -> None:
        self.app = app
        self._upstreams = upstreams
        self._signer = signer
        self._account_limiter = RateLimiter(settings.rate_limit)
        self._key_limiter = RateLimiter(settings.api_key_rate_limit)
        # A platform's callbacks, per address: the account limit, as no account stands behind.
        self._callback_limiter = RateLimiter(settings.rate_limit)
        self._trusted_proxies = settings.trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in _METHODS:
            path: str = scope["path"]
            service = owner_of(path[len(API_PREFIX) :]) if path.startswith(_PREFIX) else None
            if service is not None:
                await self._counted(scope, receive, send, service)
                return
            if scope["method"] == "POST" and path.startswith(_PREFIX):
                callback = callback_owner(path[len(API_PREFIX) :])
                if callback is not None:
                    await self._counted(scope, receive, send, callback, callback=True)
                    return
        await self.app(scope, receive, send)

    async def _counted(
        self, scope: Scope, receive: Receive, send: Send, service: str, *, callback: bool = False
    ) -> None:
        """Proxy, and count and time it as the metrics middleware counts the other routes."""
        started = time.perf_counter()
        status = 500  # unless a response starts: an error nothing answered

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if callback:
                await self._callback(scope, receive, send_and_note, service)
            else:
                await self._proxy(scope, receive, send_and_note, service)
        except ProblemError as exc:
            # Raised before anything was sent (credentials, limits): the same answer the app's
            # problem handler gives.
            await problem_response(
                exc.status, exc.title, exc.detail, errors=exc.errors, headers=exc.headers
            )(scope, receive, send_and_note)
        finally:
            method = scope["method"]
            HTTP_REQUESTS.labels(method, PROXY_TEMPLATE, str(status)).inc()
            HTTP_LATENCY.labels(method, PROXY_TEMPLATE).observe(time.perf_counter() - started)

    async def _proxy(self, scope: Scope, receive: Receive, send: Send, service: str) -> None:
        request = Request(scope, receive)
        state = request.app.state
        principal: Principal = await state.authenticator.principal_for(request)
        limiter = self._key_limiter if principal.role == Role.PARTNER else self._account_limiter
        retry_after = limiter.retry_after(principal.subject)
        if retry_after is not None:
            raise ProblemError(
                "Too many requests for this account or key",
                status=429,
                title="Rate limited",
                headers={"Retry-After": str(retry_after)},
            )

        async def record_audit(value: str, status: int) -> None:
            await _record_audit(request, principal, value, status)

        await forward(
            state.upstream,
            scope,
            receive,
            send,
            base_url=self._upstreams[service],
            service=service,
            principal_token=self._signer.token_for(principal),
            request_id=scope["state"]["request_id"],
            audit_header=audit.AUDIT_HEADER,
            audit=record_audit,
        )

    async def _callback(self, scope: Scope, receive: Receive, send: Send, service: str) -> None:
        """A platform's callback: no principal is made or forwarded; limited per address."""
        request = Request(scope, receive)
        address = client_address(request, self._trusted_proxies)
        retry_after = self._callback_limiter.retry_after("callback", address)
        if retry_after is not None:
            raise ProblemError(
                "Too many callbacks from this address",
                status=429,
                title="Rate limited",
                headers={"Retry-After": str(retry_after)},
            )

        async def unaudited(value: str, status: int) -> None:
            # Nobody signed in to name as the caller: the service logs what a callback changed.
            return None

        await forward(
            request.app.state.upstream,
            scope,
            receive,
            send,
            base_url=self._upstreams[service],
            service=service,
            principal_token=None,
            request_id=scope["state"]["request_id"],
            audit_header=audit.AUDIT_HEADER,
            audit=unaudited,
        )


def unrouted_router() -> APIRouter:
    """Every other ``/api/v1`` path: 404 (or 405 for a method no route takes) as problem+json.

    Last among the routes: its catch-all path must not shadow the gateway's own ``/api/v1``
    routes. Its template also names the proxied requests in the metrics.
    """
    router = APIRouter(include_in_schema=False)

    @router.api_route(PROXY_TEMPLATE, methods=PROXY_METHODS)
    async def unrouted(path: str) -> Response:
        return problem_response(404, "Not found", f"No route for {API_PREFIX}/{path}")

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
