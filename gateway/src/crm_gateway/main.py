"""The gateway: the only public entrance. Routes /api/v1 to the owning service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.responses import Response

from crm_gateway.config import Settings
from crm_gateway.openapi import fetch_documents, merge_documents
from crm_gateway.principal_forwarding import PrincipalSigner, principal_for
from crm_gateway.proxy import forward, make_upstream_client
from crm_gateway.routes import API_PREFIX, SERVICES, owner_of
from crm_libs.logs import configure_logging
from crm_libs.problems import install_problem_handlers, problem_response
from crm_libs.request_id import RequestIdMiddleware

PROXY_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


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

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.client = make_upstream_client(
            connect_timeout=settings.upstream_connect_timeout_seconds,
            read_timeout=settings.upstream_read_timeout_seconds,
            max_connections=settings.upstream_max_connections,
        )
        app.state.openapi_document = None
        try:
            yield
        finally:
            await app.state.client.aclose()

    app = FastAPI(
        title="CRM platform API",
        version="1.0.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    install_problem_handlers(app)
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
                documents, title="CRM platform API", version="1.0.0"
            )
        return JSONResponse(request.app.state.openapi_document)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="CRM platform API")

    @app.api_route(API_PREFIX + "/{path:path}", methods=PROXY_METHODS, include_in_schema=False)
    async def proxy(path: str, request: Request) -> Response:
        service_path = "/" + path
        service = owner_of(service_path)
        if service is None:
            return problem_response(404, "Not found", f"No route for {API_PREFIX}{service_path}")
        token = signer.token_for(principal_for(request))
        return await forward(
            request.app.state.client,
            request,
            base_url=upstreams[service],
            path=service_path,
            service=service,
            principal_token=token,
            request_id=request.scope["state"]["request_id"],
        )

    return app


__all__: list[Any] = ["create_app"]
