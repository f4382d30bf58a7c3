"""Forwarding a request to its service over one pooled client, streaming both bodies."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

import httpx
from fastapi import Request
from starlette.background import BackgroundTask
from starlette.responses import Response, StreamingResponse

from crm_gateway.routes import API_PREFIX
from crm_libs.principal import PRINCIPAL_HEADER
from crm_libs.problems import problem_response

log = logging.getLogger(__name__)

# Hop-by-hop headers (RFC 9110 §7.6.1), those the gateway alone may set, and the client's own
# credentials: services trust the signed principal only and never see a token, key or cookie.
_DROP_REQUEST = {
    "authorization",
    "x-api-key",
    "cookie",
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    PRINCIPAL_HEADER.lower(),
    "x-request-id",
}
_DROP_RESPONSE = {"connection", "keep-alive", "transfer-encoding", "content-length", "x-request-id"}


# Bodies up to this size are read whole (one write upstream); larger or unsized ones stream through.
_BUFFER_LIMIT = 256 * 1024


async def _request_content(request: Request) -> bytes | AsyncIterator[bytes] | None:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) <= _BUFFER_LIMIT:
        return await request.body()
    if length is None and "transfer-encoding" not in request.headers:
        return None  # no body at all
    return request.stream()


def forwarded_headers(
    incoming: Iterable[tuple[str, str]], principal_token: str, request_id: str
) -> list[tuple[str, str]]:
    """The headers a service receives: the client's, less credentials and hop-by-hop ones, plus
    the signed principal and the request ID."""
    headers = [(k, v) for k, v in incoming if k.lower() not in _DROP_REQUEST]
    headers.append((PRINCIPAL_HEADER, principal_token))
    headers.append(("x-request-id", request_id))
    return headers


def upstream_path(request: Request) -> str:
    """The path after the API prefix, still percent-encoded as the client sent it.

    Forwarding the decoded path would turn %2F into a separator and %00 into a NUL: the service
    must see exactly the path the gateway routed on.
    """
    raw = request.scope.get("raw_path") or request.url.path.encode()
    return raw.decode("latin-1").split("?", 1)[0].removeprefix(API_PREFIX)


def make_upstream_client(
    *, connect_timeout: float, read_timeout: float, max_connections: int
) -> httpx.AsyncClient:
    """One pooled client for every upstream call; aiohttp's transport is several times faster
    than httpx's own on this path (see bench/gateway)."""
    from httpx_aiohttp import AiohttpTransport

    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    return httpx.AsyncClient(
        transport=AiohttpTransport(limits=limits),
        timeout=httpx.Timeout(read_timeout, connect=connect_timeout, pool=connect_timeout),
        limits=limits,
    )


# Awaited with the service's audit header and status before any byte of the body is passed on;
# it raises only when the response must not be served (a read that cannot be audited).
AuditHook = Callable[[str, int], Awaitable[None]]


async def forward(
    client: httpx.AsyncClient,
    request: Request,
    *,
    base_url: str,
    path: str,
    service: str,
    principal_token: str,
    request_id: str,
    audit_header: str,
    audit: AuditHook,
) -> Response:
    headers = forwarded_headers(request.headers.items(), principal_token, request_id)
    try:
        upstream = client.build_request(
            request.method,
            base_url + upstream_path(request),
            params=request.url.query.encode("latin-1") if request.url.query else None,
            headers=headers,
            content=await _request_content(request),
        )
    except httpx.InvalidURL:
        return problem_response(400, "Malformed request", "The request URL is not valid")
    started = time.perf_counter()
    try:
        response = await client.send(upstream, stream=True)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        # The aiohttp transport reports a refused connection as a connect timeout: both mean
        # the service cannot be reached, which is a 503, not a slow answer.
        return _unavailable(service, exc)
    except httpx.TimeoutException:
        log.warning("upstream timed out", extra={"fields": {"upstream": service, "path": path}})
        return problem_response(
            504, "Gateway timeout", f"The {service} service did not answer in time"
        )
    except httpx.TransportError as exc:
        return _unavailable(service, exc)
    audit_value = response.headers.get(audit_header)
    if audit_value is not None:
        try:
            await audit(audit_value, response.status_code)
        except Exception:
            # Fail closed: a sensitive read that cannot be audited is not served.
            await response.aclose()
            log.exception("audit entry could not be written", extra={"fields": {"path": path}})
            return problem_response(
                503, "Service unavailable", "The audit trail is unavailable; retry shortly"
            )
    dropped = {*_DROP_RESPONSE, audit_header}
    out_headers = {k: v for k, v in response.headers.items() if k.lower() not in dropped}
    log.debug(
        "proxied",
        extra={
            "fields": {
                "upstream": service,
                "status": response.status_code,
                "ms": round((time.perf_counter() - started) * 1000, 1),
            }
        },
    )
    return StreamingResponse(
        response.aiter_raw(),
        status_code=response.status_code,
        headers=out_headers,
        background=BackgroundTask(response.aclose),
    )


def _unavailable(service: str, exc: Exception) -> Response:
    log.warning("upstream unavailable", extra={"fields": {"upstream": service, "error": repr(exc)}})
    return problem_response(
        503,
        "Service unavailable",
        f"The {service} service is unavailable; retry shortly",
        headers={"Retry-After": "5"},
    )
