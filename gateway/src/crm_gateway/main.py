"""The gateway: the only public entrance. Authenticates, limits, audits, routes /api/v1."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.responses import Response

from crm_gateway.accounts import service as accounts
from crm_gateway.accounts.router import router as accounts_router
from crm_gateway.api_keys.router import router as api_keys_router
from crm_gateway.audit import service as audit
from crm_gateway.audit.router import router as audit_router
from crm_gateway.auth.authenticate import Authenticator
from crm_gateway.config import Settings
from crm_gateway.openapi import fetch_documents, merge_documents
from crm_gateway.principal_forwarding import PrincipalSigner
from crm_gateway.proxy import forward, make_upstream_client
from crm_gateway.ratelimit import RateLimiter
from crm_gateway.routes import API_PREFIX, SERVICES, owner_of
from crm_gateway.security_headers import SecurityHeadersMiddleware
from crm_gateway.stores import StoreDirectory
from crm_libs.db import make_engine, make_sessionmaker
from crm_libs.logs import configure_logging
from crm_libs.principal import Principal, Role
from crm_libs.problems import ProblemError, install_problem_handlers, problem_response
from crm_libs.request_id import RequestIdMiddleware

PROXY_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.service_name, settings.log_level)
    upstreams = {
        "customer": settings.customer_url.rstrip("/"),
        "engagement": settings.engagement_url.rstrip("/"),
        "scoring": settings.scoring_url.rstrip("/"),
    }
    signer = PrincipalSigner(
        secret=settings.principal_secret, ttl_seconds=settings.principal_ttl_seconds
    )
    account_limiter = RateLimiter(settings.rate_limit)
    key_limiter = RateLimiter(settings.api_key_rate_limit)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url, pool_size=settings.database_pool_size)
        app.state.sessionmaker = make_sessionmaker(engine)
        app.state.authenticator = Authenticator(
            settings=settings, sessionmaker=app.state.sessionmaker
        )
        app.state.client = make_upstream_client(
            connect_timeout=settings.upstream_connect_timeout_seconds,
            read_timeout=settings.upstream_read_timeout_seconds,
            max_connections=settings.upstream_max_connections,
        )
        app.state.openapi_document = None
        app.state.stores = StoreDirectory(
            client=app.state.client, customer_url=upstreams["customer"], signer=signer
        )
        if settings.bootstrap_admin_password:
            async with app.state.sessionmaker() as session, session.begin():
                created = await accounts.ensure_bootstrap_admin(
                    session,
                    username=settings.bootstrap_admin_user,
                    password=settings.bootstrap_admin_password,
                )
            if created:
                log.warning(
                    "bootstrap administrator created",
                    extra={"fields": {"username": settings.bootstrap_admin_user}},
                )
        watcher = asyncio.create_task(app.state.authenticator.run())
        try:
            yield
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher
            await app.state.client.aclose()
            await engine.dispose()

    app = FastAPI(
        title="CRM platform API",
        version="1.0.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.sign_in_limiter = RateLimiter(settings.sign_in_rate_limit)
    install_problem_handlers(app)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=PROXY_METHODS,
        allow_headers=[
            "Authorization",
            "Content-Type",
            "X-API-Key",
            "Idempotency-Key",
            "If-Match",
            "X-Request-ID",
        ],
        expose_headers=["X-Request-ID", "ETag", "Retry-After"],
        max_age=600,
    )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestIdMiddleware)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        client: httpx.AsyncClient = request.app.state.client

        async def check(service: str) -> tuple[str, str]:
            try:
                response = await client.get(f"{upstreams[service]}/readyz", timeout=3)
                return (
                    service,
                    "ready" if response.status_code == 200 else f"status {response.status_code}",
                )
            except httpx.HTTPError as exc:
                return service, f"unavailable ({type(exc).__name__})"

        results = dict(await asyncio.gather(*(check(s) for s in SERVICES)))
        ready = all(v == "ready" for v in results.values())
        return JSONResponse(
            {"status": "ready" if ready else "degraded", "services": results},
            status_code=200 if ready else 503,
        )

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi_document(request: Request) -> JSONResponse:
        if request.app.state.openapi_document is None:
            try:
                documents = await fetch_documents(request.app.state.client, upstreams)
            except httpx.HTTPError:
                return problem_response(
                    503, "Service unavailable", "A service's API description is unavailable"
                )
            request.app.state.openapi_document = merge_documents(
                documents, title="CRM platform API", version="1.0.0", own=app.openapi()
            )
        return JSONResponse(request.app.state.openapi_document)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="CRM platform API")

    app.include_router(accounts_router)
    app.include_router(api_keys_router)
    app.include_router(audit_router)

    @app.api_route(API_PREFIX + "/{path:path}", methods=PROXY_METHODS, include_in_schema=False)
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

    return app


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
