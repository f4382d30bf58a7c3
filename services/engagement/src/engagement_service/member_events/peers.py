"""The customer service and scoring, asked over HTTP as the caller: the caller's signed
principal is forwarded (or, for the guest-file job, signed again for the account that checked
the guest in), so store scope and each service's rules stay that service's own.

- the customer service: whether a store exists (head office names any), a guest's file by phone
  (``GET /customers?q=``), a guest's new prospect file (``POST /customers``);
- scoring: a segment's customers (``GET /scores`` with its filters, every page).

What the customer service's answers disclose (``X-CRM-Audit``) goes to the audit trail: within a
request with the request's response, in the guest-file job to the gateway's intake through the
``audit`` it passes (peer_audit.py), before the answer is used.
"""

from typing import Any
from urllib.parse import quote

import httpx
from fastapi import FastAPI

from crm_libs.principal import PRINCIPAL_HEADER
from engagement_service import peer_audit
from engagement_service.config import Settings

# Scoring's largest page: a segment of 10,000 customers is 20 requests.
_SEGMENT_PAGE = 500


class PeerUnavailable(Exception):
    """The service did not answer, or answered with a server error."""


class Refused(Exception):
    """The service refused the request's values (422): its ``errors`` as it gave them."""

    def __init__(self, errors: list[dict[str, Any]], detail: str) -> None:
        super().__init__(detail)
        self.errors = errors
        self.detail = detail


def _client(app: FastAPI, name: str) -> httpx.AsyncClient:
    # One pooled client per peer and process, made on first use.
    clients: dict[str, httpx.AsyncClient] | None = getattr(app.state, "member_event_peers", None)
    if clients is None:
        clients = app.state.member_event_peers = {}
    client = clients.get(name)
    if client is None:
        settings: Settings = app.state.settings
        url = settings.customer_url if name == "customer" else settings.scoring_url
        client = httpx.AsyncClient(base_url=url, timeout=settings.customer_timeout_seconds)
        clients[name] = client
    return client


async def _call(
    app: FastAPI,
    peer: str,
    method: str,
    path: str,
    *,
    token: str,
    audit: peer_audit.Recorder | None = None,
    **kwargs: Any,
) -> httpx.Response:
    try:
        response = await _client(app, peer).request(
            method, path, headers={PRINCIPAL_HEADER: token}, **kwargs
        )
    except httpx.HTTPError as exc:
        raise PeerUnavailable(f"{peer}: {exc or type(exc).__name__}") from exc
    if response.status_code >= 500:
        raise PeerUnavailable(f"{peer}: {path} answered {response.status_code}")
    if audit is None or peer_audit.in_request():
        peer_audit.collect(response)
    else:
        try:
            await audit.record(peer_audit.entries_of(response))
        except peer_audit.AuditUnrecorded as exc:
            # Unrecorded, the answer is not used: the job tries again as after an outage (a file
            # this created is then found by its phone and linked, not opened twice).
            raise PeerUnavailable(f"audit trail: {exc}") from exc
    if response.status_code == 422:
        body = response.json()
        raise Refused(body.get("errors") or [], body.get("detail") or "refused")
    return response


def _unexpected(peer: str, path: str, response: httpx.Response) -> PeerUnavailable:
    return PeerUnavailable(f"{peer}: {path} answered {response.status_code}")


async def store_exists(app: FastAPI, *, token: str, store_id: str) -> bool:
    """Whether the caller may see the store (``GET /stores/{id}``)."""
    path = f"/stores/{quote(store_id, safe='')}"
    response = await _call(app, "customer", "GET", path, token=token)
    if response.status_code in (200, 404):
        return response.status_code == 200
    raise _unexpected("customer", path, response)


async def files_with_phone(
    app: FastAPI,
    *,
    token: str,
    store_id: str,
    phone: str,
    audit: peer_audit.Recorder | None = None,
) -> list[str]:
    """The store's active files with this whole phone number, oldest first; a number the
    customer service does not take is :class:`Refused`."""
    params = {"store_id": store_id, "q": phone, "status": "active", "limit": 10}
    response = await _call(
        app, "customer", "GET", "/customers", token=token, audit=audit, params=params
    )
    if response.status_code != 200:
        raise _unexpected("customer", "/customers", response)
    return sorted(item["id"] for item in response.json()["items"])


async def open_file(
    app: FastAPI, *, token: str, body: dict[str, Any], audit: peer_audit.Recorder | None = None
) -> str:
    """A new customer file (``POST /customers``): its id."""
    response = await _call(
        app, "customer", "POST", "/customers", token=token, audit=audit, json=body
    )
    if response.status_code != 201:
        raise _unexpected("customer", "/customers", response)
    return str(response.json()["id"])


async def segment_members(
    app: FastAPI, *, token: str, store_id: str, filters: dict[str, str]
) -> list[str]:
    """Every customer of the store in scoring's segment, all pages."""
    found: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"store_id": store_id, "limit": _SEGMENT_PAGE, **filters}
        if cursor:
            params["cursor"] = cursor
        response = await _call(app, "scoring", "GET", "/scores", token=token, params=params)
        if response.status_code != 200:
            raise _unexpected("scoring", "/scores", response)
        page = response.json()
        found.extend(item["customer_id"] for item in page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return found
