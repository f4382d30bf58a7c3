"""What a response disclosed or changed, named for the gateway's audit trail (header only)."""

from typing import Any

import orjson
from fastapi import Response

AUDIT_HEADER = "X-CRM-Audit"


def note(
    response: Response,
    *,
    action: str,
    resource: str,
    fields: list[str],
    customer_id: str | None = None,
) -> None:
    """Add one audit entry to the response (several calls add several entries)."""
    entries: list[dict[str, Any]] = []
    if AUDIT_HEADER in response.headers:
        entries = orjson.loads(response.headers[AUDIT_HEADER])
    entries.append(
        {"action": action, "resource": resource, "customer_id": customer_id, "fields": fields}
    )
    response.headers[AUDIT_HEADER] = orjson.dumps(entries).decode()
