"""Events this service publishes about customer files on ``crm.customers.v1``.

The contract is deploy/README.md's ("crm.customers.v1: the customer file's events"): every
event carries the file after the change (``payload.file``) with what consumers need and no
personal data (no name, phone, address, ID number or health). Staged in the outbox inside the
change's own transaction, so an event is published exactly when the change is committed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crm_libs.events.event_types import (
    CUSTOMER_ARCHIVED,
    CUSTOMER_ERASED,
    CUSTOMER_MERGED,
    CUSTOMER_REGISTERED,
    CUSTOMER_UPDATED,
)
from crm_libs.events.topics import Topics
from customer_service.customers.profile import NO_CONSENTS

# The database layer and the envelope's model only where an event is staged: a spreadsheet
# import's row-check processes build the registrations' payloads with ``file_payload`` and
# should load neither SQLAlchemy nor pydantic to start.
if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from customer_service.customers.models import Customer


def file_payload(
    customer: Customer, *, timezone: str, relations: list[dict[str, str]]
) -> dict[str, Any]:
    """``payload.file``: the birthday is the solar date of birth, whatever its calendar."""
    return {
        "timezone": timezone,
        "status": customer.status,
        "owner_staff_id": customer.owner_staff_id,
        "birthday": customer.birthday.isoformat() if customer.birthday else None,
        "birthday_calendar": customer.birthday_calendar,
        "wedding_anniversary": (
            customer.wedding_anniversary.isoformat() if customer.wedding_anniversary else None
        ),
        "relations": relations,
        "referrer_id": customer.referrer_id,
        # Whether other health products are in use, never which: the health data stays here.
        # A file made by an import (imports/customer_checks.NewFile) has no health data.
        "uses_competitor_products": getattr(customer, "uses_competitor_products", False),
        "consents": customer.consents or NO_CONSENTS,
        # The address's district alone (the analysis's region), never the street.
        "district": (getattr(customer, "address", None) or {}).get("district"),
        "version": customer.version,
    }


def _stage(session: AsyncSession, customer: Customer, type_: str, payload: dict[str, Any]) -> None:
    from crm_libs.events.envelope import EventEnvelope
    from crm_libs.events.outbox import enqueue

    enqueue(
        session,
        topic=Topics.CUSTOMERS,
        event=EventEnvelope(
            type=type_, store_id=customer.store_id, customer_id=customer.id, payload=payload
        ),
    )


def customer_registered(session: AsyncSession, customer: Customer, *, timezone: str) -> None:
    # ``timezone`` stays at the top level too: scoring reads it there (and so did every
    # registration published before the file was carried).
    file = file_payload(customer, timezone=timezone, relations=[])
    _stage(session, customer, CUSTOMER_REGISTERED, {"timezone": timezone, "file": file})


def customer_updated(
    session: AsyncSession,
    customer: Customer,
    *,
    timezone: str,
    relations: list[dict[str, str]],
    changed: list[str],
) -> None:
    file = file_payload(customer, timezone=timezone, relations=relations)
    _stage(session, customer, CUSTOMER_UPDATED, {"file": file, "changed": changed})


def customer_archived(
    session: AsyncSession, customer: Customer, *, timezone: str, relations: list[dict[str, str]]
) -> None:
    file = file_payload(customer, timezone=timezone, relations=relations)
    _stage(session, customer, CUSTOMER_ARCHIVED, {"file": file})


def customer_erased(session: AsyncSession, customer: Customer, *, timezone: str) -> None:
    """The file once anonymised (customers/privacy.py): its personal fields are null, and it has
    no relations left."""
    file = file_payload(customer, timezone=timezone, relations=[])
    _stage(session, customer, CUSTOMER_ERASED, {"file": file})


def customer_merged(
    session: AsyncSession, customer: Customer, *, timezone: str, merged_into: str
) -> None:
    """The merged-away file (customers/merge.py), keyed by its own id: its relations went to
    the survivor, ``merged_into``."""
    file = file_payload(customer, timezone=timezone, relations=[])
    _stage(session, customer, CUSTOMER_MERGED, {"file": file, "merged_into": merged_into})
