"""The gateway's own unversioned routes: liveness, readiness, the merged OpenAPI document, docs."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from crm_gateway.openapi import fetch_documents, merge_documents
from crm_gateway.routes import SERVICES
from crm_libs.problems import problem_response


def meta_router(upstreams: dict[str, str]) -> APIRouter:
    """Routes outside ``/api/v1``; ``upstreams`` maps each service to its base URL."""
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
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

    @router.get("/openapi.json")
    async def openapi_document(request: Request) -> JSONResponse:
        if request.app.state.openapi_document is None:
            try:
                documents = await fetch_documents(request.app.state.client, upstreams)
            except httpx.HTTPError:
                return problem_response(
                    503, "Service unavailable", "A service's API description is unavailable"
                )
            request.app.state.openapi_document = merge_documents(
                documents, title="CRM platform API", version="1.0.0", own=request.app.openapi()
            )
        return JSONResponse(request.app.state.openapi_document)

    @router.get("/docs")
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="CRM platform API")

    return router
