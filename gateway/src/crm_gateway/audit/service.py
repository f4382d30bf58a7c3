"""The audit trail: sensitive reads and changes to customer files, listed for head office."""

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_gateway.audit.models import AuditEntry
from crm_libs import audit_header
from crm_libs.logs import request_id_var
from crm_libs.pagination import PageParams, keyset
from crm_libs.principal import Principal

# Services name what a response disclosed or changed in this header; the gateway records it
# and never passes the header on.
AUDIT_HEADER = audit_header.AUDIT_HEADER.lower()


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


def entries_from_header(value: str, *, caller: Principal, status: int) -> list[AuditEntry]:
    """The rows for a service's audit header, stamped with the caller, request and time now."""
    at = datetime.now(UTC)
    return [
        AuditEntry(
            at=at,
            actor=caller.subject,
            role=caller.role.value,
            store_id=caller.store_id,
            action=entry.action,
            resource=entry.resource,
            customer_id=entry.customer_id,
            fields=entry.fields,
            request_id=request_id_var.get(),
            status=status,
        )
        for entry in audit_header.decode(value)
    ]


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
