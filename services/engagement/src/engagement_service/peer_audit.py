"""What the customer service disclosed to engagement, carried to the gateway's audit trail.

The customer service names what an answer disclosed in its ``X-CRM-Audit`` header, and the
gateway records that header, but engagement asks the customer service directly, so the header
of those answers would be lost. Two ways on, one for each kind of caller:

- within a user's request (the work list's names, the roster, a queued message's recipient):
  each answer's entries are collected for the request, and :class:`PeerAuditMiddleware` adds
  them to engagement's own response header; the gateway records them against the real caller
  as it records any service's header;
- outside any request (the SMS worker's numbers, the campaign send job's names, the guest-file
  job's lookups and files): :class:`GatewayAudit` hands them to the gateway's intake
  (``SERVICE_AUDIT_PATH``) under the service's own signed principal before what they name is
  used. A job that reads as an account (:func:`on_behalf`) signs its service principal for that
  account's role and store and names the account, so the trail says both. If the gateway cannot
  take them, the read counts as failed and the work waits: nothing disclosed is used unrecorded
  (the gateway itself refuses a read it cannot record in the same way).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm_libs import audit_header
from crm_libs.audit_header import AUDIT_HEADER, SERVICE_AUDIT_PATH, AuditEntry, ServiceAudit
from crm_libs.principal import PRINCIPAL_HEADER, Principal, sign_principal

# The entries of the request in hand (None outside a request). A list, not a value set once:
# a copied context (a task the route starts) still adds to the same request's list.
_collected: ContextVar[list[AuditEntry] | None] = ContextVar("peer_audit", default=None)


class AuditUnrecorded(Exception):
    """The gateway did not take the entries: what they name must not be used."""


def entries_of(response: httpx.Response) -> list[AuditEntry]:
    """The entries a peer's answer names (none when it names nothing)."""
    value = response.headers.get(AUDIT_HEADER)
    return audit_header.decode(value) if value else []


def collect(response: httpx.Response) -> list[AuditEntry]:
    """Keep the answer's entries for the request in hand (if any); returns them."""
    entries = entries_of(response)
    collected = _collected.get()
    if entries and collected is not None:
        collected.extend(entries)
    return entries


def in_request() -> bool:
    return _collected.get() is not None


def per_file(entries: list[AuditEntry], items: Iterable[Mapping[str, Any]]) -> list[AuditEntry]:
    """A list answer's entries, one per file: the customer service names a page's disclosure
    once (its header stays small), but a worker's trail must say whose number it read. Each file
    is named with the disclosed fields it holds (``phones`` counts as ``phone``)."""
    listed = list(items)
    out: list[AuditEntry] = []
    for entry in entries:
        if entry.customer_id is not None or not listed:
            out.append(entry)
            continue
        for item in listed:
            held = [f for f in entry.fields if item.get(f) or (f == "phone" and item.get("phones"))]
            if held:
                out.append(
                    AuditEntry(
                        action="read",
                        resource=f"customer/{item['id']}",
                        customer_id=item["id"],
                        fields=held,
                    )
                )
    return out


class GatewayAudit:
    """Hands entries to the gateway's audit intake under a service's own signed principal."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        # ``client`` is based on the gateway's URL.
        self._client = client

    async def record(
        self, entries: list[AuditEntry], *, principal_header: str, on_behalf_of: str | None = None
    ) -> None:
        """Recorded (or durably kept by the gateway) on return; else :class:`AuditUnrecorded`.

        ``on_behalf_of``: the account the entries were read as, when not the service itself."""
        if not entries:
            return
        body = ServiceAudit(entries=entries, on_behalf_of=on_behalf_of).model_dump(mode="json")
        try:
            response = await self._client.post(
                SERVICE_AUDIT_PATH, json=body, headers={PRINCIPAL_HEADER: principal_header}
            )
        except httpx.HTTPError as exc:
            raise AuditUnrecorded(str(exc) or type(exc).__name__) from exc
        if response.status_code not in (201, 202):
            raise AuditUnrecorded(f"{SERVICE_AUDIT_PATH} answered {response.status_code}")


@dataclass(frozen=True, slots=True)
class Recorder:
    """The intake bound to one caller: a reader's entries go under ``principal_header`` (a
    service's own), for ``on_behalf_of`` when the reads were made as that account."""

    gateway: GatewayAudit
    principal_header: str
    on_behalf_of: str | None = None

    async def record(self, entries: list[AuditEntry]) -> None:
        await self.gateway.record(
            entries, principal_header=self.principal_header, on_behalf_of=self.on_behalf_of
        )


def on_behalf(
    gateway: GatewayAudit,
    *,
    service: str,
    account: Principal,
    secret: str,
    ttl_seconds: int = 300,
) -> Recorder:
    """The intake for a job that reads as ``account``: under ``service`` (a subject the gateway
    takes, ``SERVICE_AUDIT_ACTORS``) signed for the account's role and store, so the entries
    carry the scope the reads had, and naming the account."""
    principal = Principal(subject=service, role=account.role, store_id=account.store_id)
    header = sign_principal(principal, secret=secret, ttl_seconds=ttl_seconds)
    return Recorder(gateway, header, on_behalf_of=account.subject)


class PeerAuditMiddleware:
    """Collects the request's peer entries and adds them to the response's audit header.

    Pure ASGI (no task of its own), so the route's context is the one this sets."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        collected: list[AuditEntry] = []
        token = _collected.set(collected)

        async def send_with_entries(message: Message) -> None:
            if message["type"] == "http.response.start" and collected:
                headers = MutableHeaders(scope=message)
                merged = audit_header.merge(headers.get(AUDIT_HEADER), collected)
                if merged is not None:
                    headers[AUDIT_HEADER] = merged
            await send(message)

        try:
            await self.app(scope, receive, send_with_entries)
        finally:
            _collected.reset(token)
