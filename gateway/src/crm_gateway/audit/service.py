"""The audit trail: sensitive reads and changes to customer files, listed for head office."""

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_gateway.audit.models import AuditEntry
from crm_libs.logs import request_id_var
from crm_libs.pagination import PageParams, keyset
from crm_libs.principal import Principal

# Services name what a response disclosed or changed in this header; the gateway records it
# and never passes the header on.
AUDIT_HEADER = "x-crm-audit"


async def record(
    session: AsyncSession,
    *,
    caller: Principal,
    action: str,
    resource: str,
    fields: list[str],
    customer_id: str | None = None,
    status: int | None = None,
) -> None:
    session.add(
        AuditEntry(
            actor=caller.subject,
            role=caller.role.value,
            store_id=caller.store_id,
            action=action,
            resource=resource,
            customer_id=customer_id,
            fields=fields,
            request_id=request_id_var.get(),
            status=status,
        )
    )
    await session.flush()


def parse_header(value: str) -> list[dict[str, Any]]:
    """The service's audit header: a JSON list of {action, resource, customer_id?, fields}."""
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        return [{"action": "unknown", "resource": "unparseable audit header", "fields": []}]
    entries = parsed if isinstance(parsed, list) else [parsed]
    return [e for e in entries if isinstance(e, dict)]


async def list_entries(
    session: AsyncSession,
    *,
    page: PageParams,
    customer_id: str | None,
    actor: str | None,
    since: datetime | None,
    until: datetime | None,
) -> list[AuditEntry]:
    query = keyset(select(AuditEntry), col(AuditEntry.id), page, key=int)
    if customer_id:
        query = query.where(col(AuditEntry.customer_id) == customer_id)
    if actor:
        query = query.where(col(AuditEntry.actor) == actor)
    if since:
        query = query.where(col(AuditEntry.at) >= since)
    if until:
        query = query.where(col(AuditEntry.at) < until)
    return list((await session.execute(query)).scalars())
