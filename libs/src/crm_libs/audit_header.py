"""What a response disclosed or changed, as the service names it to the gateway's audit trail.

Services set the header, the gateway records each entry and never passes the header on. One
model on both sides (like the principal header) keeps the two from drifting apart.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

AUDIT_HEADER = "X-CRM-Audit"


class AuditEntry(BaseModel):
    action: str = Field(min_length=1, max_length=40)
    resource: str = Field(max_length=500)
    customer_id: str | None = None
    fields: list[str] = Field(default_factory=list)


_ENTRIES = TypeAdapter(list[AuditEntry])

# Recorded in place of a header the gateway cannot read: the disclosure is still on record.
UNREADABLE = AuditEntry(action="unknown", resource="unparseable audit header")


def encode(entries: list[AuditEntry]) -> str:
    # ASCII only: a header's value is latin-1 on the wire, and a resource may name a search for
    # a Chinese name (JSON's \u escapes read back as the same text).
    return _ENTRIES.dump_json(entries, ensure_ascii=True).decode()


def decode(value: str) -> list[AuditEntry]:
    """The header's entries; one ``unknown`` entry if it cannot be read."""
    try:
        return _ENTRIES.validate_json(value)
    except ValidationError:
        return [UNREADABLE]


def add(value: str | None, entry: AuditEntry) -> str:
    """The header ``value`` (None: not set yet) with ``entry`` appended."""
    return encode([*(decode(value) if value is not None else []), entry])


def merge(value: str | None, entries: list[AuditEntry]) -> str | None:
    """The header ``value`` (None: not set) with ``entries`` appended; None if both are empty."""
    if not entries:
        return value
    return encode([*(decode(value) if value is not None else []), *entries])


# Where a service hands the gateway what a peer disclosed to it outside any user's request (a
# worker, a background job): the gateway records each entry with the service's own principal.
SERVICE_AUDIT_PATH = "/internal/audit"


class ServiceAudit(BaseModel):
    """The body of :data:`SERVICE_AUDIT_PATH`: at most a batch's worth of entries.

    ``on_behalf_of``: the account a job read them as (a campaign's sender, the account that
    checked a guest in), when the service read as that account rather than as itself; the
    gateway names both in the entries' actor."""

    entries: list[AuditEntry] = Field(min_length=1, max_length=2000)
    on_behalf_of: str | None = Field(default=None, min_length=1, max_length=200)
