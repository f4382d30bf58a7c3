"""The audit intake: what a peer disclosed to a service's worker, outside any user's request.

A worker (engagement's SMS sender) reads customers' numbers from the customer service directly,
so no proxied answer carries that read's audit header past the gateway. The service hands the
entries here under its own signed principal before it uses what they name; each is recorded
with that principal as the actor (and the account it read as, when a job read as one: a
campaign's sender, the account that checked a guest in). When the audit database cannot take
them, they go to the local spool (fsynced, moved into the table once it is back) and the answer
is 202: either way they are kept before the service goes on. Anything else (the gateway down)
and the service's worker waits and reads again (engagement_service/peer_audit.py).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response

from crm_gateway.access import SERVICE_AUDIT_ACTORS
from crm_gateway.audit.models import AuditEntry
from crm_gateway.config import Settings
from crm_libs.audit_header import SERVICE_AUDIT_PATH, ServiceAudit
from crm_libs.logs import request_id_var
from crm_libs.principal import PRINCIPAL_HEADER, Principal, verify_principal
from crm_libs.problems import Forbidden, ProblemError

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)


def _service_principal(request: Request, token: str | None) -> Principal:
    settings: Settings = request.app.state.settings
    principal = verify_principal(token or "", secret=settings.principal_secret)
    if principal.role not in SERVICE_AUDIT_ACTORS.get(principal.subject, frozenset()):
        raise Forbidden(f"{principal.subject} may not hand audit entries to the gateway")
    return principal


def actor_of(principal: Principal, on_behalf_of: str | None) -> str:
    """The entries' actor: the service, and the account it read as when it read as one
    (``engagement:campaigns for <account>``), so the trail answers both "which job" and "whose
    rights"."""
    return f"{principal.subject} for {on_behalf_of}" if on_behalf_of else principal.subject


@router.post(SERVICE_AUDIT_PATH, status_code=201)
async def take_audit_entries(
    batch: ServiceAudit,
    request: Request,
    response: Response,
    token: Annotated[str | None, Header(alias=PRINCIPAL_HEADER)] = None,
) -> dict[str, int]:
    principal = _service_principal(request, token)
    at = datetime.now(UTC)
    actor = actor_of(principal, batch.on_behalf_of)
    entries = [
        AuditEntry(
            at=at,
            actor=actor,
            role=principal.role.value,
            store_id=principal.store_id,
            action=entry.action,
            resource=entry.resource,
            customer_id=entry.customer_id,
            fields=entry.fields,
            request_id=request_id_var.get(),
        )
        for entry in batch.entries
    ]
    # Taken before the insert: a failed session may leave the rows in any state.
    rows = [entry.model_dump(mode="json", exclude={"id"}) for entry in entries]
    try:
        async with request.app.state.sessionmaker() as session, session.begin():
            session.add_all(entries)
    except Exception:
        log.warning(
            "audit database unavailable; a service's entries spooled",
            extra={"fields": {"actor": actor, "entries": len(rows)}},
        )
        try:
            await request.app.state.audit_spool.keep(rows)
        except Exception as exc:
            raise ProblemError(
                "The audit trail cannot take entries now", status=503, title="Unavailable"
            ) from exc
        response.status_code = 202
        return {"spooled": len(rows)}
    return {"recorded": len(entries)}
