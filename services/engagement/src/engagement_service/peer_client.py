"""Engagement's one way of asking another service over HTTP (the customer service, scoring, and
the gateway's audit intake).

- Connections: one pooled client per peer and process, made on first use (its connections
  outlive the requests); a worker that outlives no request makes and closes its own with
  :func:`new_client`. Either way the peer's URL and ``customer_timeout_seconds`` come from here:
  a caller would rather answer without a peer than wait longer for it.
- Credentials: every request carries a principal, the caller's as the gateway signed it
  (:func:`caller_token`), or one a job signed for the account it works for, so store scope and
  masking stay the peer's own rules.
- Audit: what an answer disclosed (``X-CRM-Audit``) goes on the trail before it is used
  (:func:`note`, peer_audit.py).
- Errors: no answer, a server error, or a trail that could not take the disclosure is
  :class:`PeerUnavailable` (the routes answer 503, the jobs wait and try again); a 422 is
  :class:`Refused` with the peer's ``errors``.
"""

from collections.abc import Iterable, Mapping
from typing import Any, Literal

import httpx
from fastapi import FastAPI, Request

from crm_libs.principal import PRINCIPAL_HEADER
from engagement_service import peer_audit
from engagement_service.config import Settings

Peer = Literal["customer", "scoring", "gateway"]


class PeerUnavailable(Exception):
    """The service did not answer, answered with a server error, or what it disclosed could not
    be put on the audit trail."""


class Refused(Exception):
    """The service refused the request's values (422): its ``errors`` as it gave them."""

    def __init__(self, errors: list[dict[str, Any]], detail: str) -> None:
        super().__init__(detail)
        self.errors = errors
        self.detail = detail


def _url(settings: Settings, peer: Peer) -> str:
    if peer == "customer":
        return settings.customer_url
    if peer == "scoring":
        return settings.scoring_url
    return settings.gateway_url


def new_client(settings: Settings, peer: Peer) -> httpx.AsyncClient:
    """A client of the peer's own, for a worker that closes it when it stops."""
    return httpx.AsyncClient(
        base_url=_url(settings, peer), timeout=settings.customer_timeout_seconds
    )


def pooled_client(app: FastAPI, peer: Peer = "customer") -> httpx.AsyncClient:
    """The process's pooled client to ``peer``, shared by every request."""
    clients: dict[str, httpx.AsyncClient] | None = getattr(app.state, "peer_clients", None)
    if clients is None:
        clients = app.state.peer_clients = {}
    client = clients.get(peer)
    if client is None:
        client = clients[peer] = new_client(app.state.settings, peer)
    return client


def caller_token(request: Request) -> str:
    """The caller's principal as the gateway signed it, forwarded as it came."""
    return request.headers.get(PRINCIPAL_HEADER, "")


async def send(
    client: httpx.AsyncClient, method: str, path: str, *, token: str, **kwargs: Any
) -> httpx.Response:
    """The peer's answer under the principal ``token``; no answer or a 5xx is
    :class:`PeerUnavailable`."""
    where = str(client.base_url)
    try:
        response = await client.request(method, path, headers={PRINCIPAL_HEADER: token}, **kwargs)
    except httpx.HTTPError as exc:
        raise PeerUnavailable(f"{where}: {exc or type(exc).__name__}") from exc
    if response.status_code >= 500:
        raise unexpected(path, response)
    return response


async def note(
    response: httpx.Response,
    *,
    audit: peer_audit.Recorder | None = None,
    items: Iterable[Mapping[str, Any]] = (),
) -> None:
    """Put what the answer disclosed on the trail before any of it is used: within a request
    with the request's response, outside one to the gateway's intake through ``audit`` (a list
    answer's entries named per file of ``items``, so a job's trail says whose fields it read)."""
    if audit is None or peer_audit.in_request():
        peer_audit.collect(response)
        return
    entries = peer_audit.entries_of(response)
    try:
        await audit.record(peer_audit.per_file(entries, items))
    except peer_audit.AuditUnrecorded as exc:
        # Unrecorded, the answer is dropped unused: the caller waits as for an outage (a file a
        # job created is then found by its phone and linked, not opened twice).
        raise PeerUnavailable(f"audit trail: {exc}") from exc


async def call(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    *,
    token: str,
    audit: peer_audit.Recorder | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """:func:`send`, the disclosure noted (:func:`note`), and a 422 raised as :class:`Refused`."""
    response = await send(client, method, path, token=token, **kwargs)
    await note(response, audit=audit)
    if response.status_code == 422:
        body = response.json()
        raise Refused(body.get("errors") or [], body.get("detail") or "refused")
    return response


def unexpected(path: str, response: httpx.Response) -> PeerUnavailable:
    """An answer the caller has no use for, counted as the peer being unavailable."""
    return PeerUnavailable(f"{response.request.url.host}: {path} answered {response.status_code}")
