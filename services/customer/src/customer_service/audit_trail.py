"""What a response disclosed or changed, named for the gateway's audit trail (header only)."""

from fastapi import Response

from crm_libs import audit_header
from crm_libs.audit_header import AUDIT_HEADER, AuditEntry


def note(
    response: Response,
    *,
    action: str,
    resource: str,
    fields: list[str],
    customer_id: str | None = None,
) -> None:
    """Add one audit entry to the response (several calls add several entries)."""
    entry = AuditEntry(action=action, resource=resource, customer_id=customer_id, fields=fields)
    response.headers[AUDIT_HEADER] = audit_header.add(response.headers.get(AUDIT_HEADER), entry)
