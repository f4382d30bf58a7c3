"""The customer service, asked over HTTP as the caller: the caller's signed principal
(``X-CRM-Principal``, as the gateway signed it) is forwarded, so store scope and masking stay
the customer service's. Engagement keeps no names (its copy of the files carries none by
contract) and no roster: the work list's names and the staff statistics' staff member come
from here. What an answer disclosed is carried to the audit trail (peer_audit.py).
"""

from typing import Any
from urllib.parse import quote

import httpx
from fastapi import FastAPI, Request

from crm_libs.principal import PRINCIPAL_HEADER
from engagement_service import peer_audit
from engagement_service.config import Settings


class CustomerServiceUnavailable(Exception):
    """The customer service did not answer, or answered with a server error."""


def _client(app: FastAPI) -> httpx.AsyncClient:
    # One pooled client per process, made on first use: its connections outlive the requests.
    client: httpx.AsyncClient | None = getattr(app.state, "customer_client", None)
    if client is None:
        settings: Settings = app.state.settings
        client = httpx.AsyncClient(
            base_url=settings.customer_url, timeout=settings.customer_timeout_seconds
        )
        app.state.customer_client = client
    return client


async def _get(request: Request, path: str, params: Any = None) -> httpx.Response:
    headers = {PRINCIPAL_HEADER: request.headers.get(PRINCIPAL_HEADER, "")}
    try:
        response = await _client(request.app).get(path, params=params, headers=headers)
    except httpx.HTTPError as exc:
        raise CustomerServiceUnavailable(str(exc) or type(exc).__name__) from exc
    # What the answer disclosed goes on the trail with the caller's request (peer_audit.py).
    peer_audit.collect(response)
    if response.status_code >= 500:
        raise CustomerServiceUnavailable(f"{path} answered {response.status_code}")
    return response


async def names_of(request: Request, customer_ids: list[str]) -> dict[str, str | None]:
    """The names of ``customer_ids`` the caller may see, in one request (``GET /customers?ids=``,
    at most a page's worth); a file the caller may not see is left out."""
    if not customer_ids:
        return {}
    unique = sorted(set(customer_ids))
    response = await _get(
        request, "/customers", params={"ids": unique, "limit": len(unique), "status": "active"}
    )
    if response.status_code != 200:
        raise CustomerServiceUnavailable(f"/customers answered {response.status_code}")
    return {item["id"]: item.get("name") for item in response.json()["items"]}


async def staff_member(request: Request, staff_id: str) -> dict[str, Any] | None:
    """The roster entry the caller may see (``GET /staff/{id}``), or None (404: unknown, or
    another store's)."""
    response = await _get(request, f"/staff/{quote(staff_id, safe='')}")
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise CustomerServiceUnavailable(f"/staff answered {response.status_code}")
    found: dict[str, Any] = response.json()
    return found


def pooled_client(app: FastAPI) -> httpx.AsyncClient:
    """The process's pooled client to the customer service (messages/directory.py's reads)."""
    return _client(app)
