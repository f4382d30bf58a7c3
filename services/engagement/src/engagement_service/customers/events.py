"""The fields of ``crm.customers.v1`` this service reads (the customer service publishes them).

Every event carries the file as it is after the change (``payload.file``); engagement keeps what
tasks and care need and ignores the rest. ``customer.registered`` was first published with the
time zone alone (``payload: {timezone}``): such an event still registers the file.
"""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel

from crm_libs.events.envelope import EventEnvelope

CUSTOMER_REGISTERED = "customer.registered"
CUSTOMER_UPDATED = "customer.updated"
CUSTOMER_ARCHIVED = "customer.archived"
CUSTOMER_MERGED = "customer.merged"
CUSTOMER_ERASED = "customer.erased"
CUSTOMER_EVENTS = frozenset(
    {CUSTOMER_REGISTERED, CUSTOMER_UPDATED, CUSTOMER_ARCHIVED, CUSTOMER_MERGED, CUSTOMER_ERASED}
)

FileStatus = Literal["active", "archived", "merged", "erased"]

# The type says what happened, whatever the file's status reads.
_STATUS_OF_TYPE: dict[str, FileStatus] = {
    CUSTOMER_ARCHIVED: "archived",
    CUSTOMER_MERGED: "merged",
    CUSTOMER_ERASED: "erased",
}

# A registration without a file predates versioned events: any versioned event of the same file
# (the customer service's versions start at 1) is newer.
UNVERSIONED = 0


def applied_by_version(event: EventEnvelope) -> bool:
    """A file's event is applied once by the file's version: the copy takes only an event newer
    than the version it holds (customers/service.py's ``apply_changes``), and what tasks do
    follows from the events it took. The consumer keeps no claim row for it
    (crm_libs.events.consumer's ``idempotent``): an import's hundred thousand registrations would
    each write one more row and index entry for nothing."""
    return event.type in CUSTOMER_EVENTS


class SmsConsentSeen(BaseModel):
    granted: bool = False
    at: datetime | None = None
    channel: str | None = None


class ConsentsSeen(BaseModel):
    sms: SmsConsentSeen = SmsConsentSeen()


class RelationSeen(BaseModel):
    customer_id: str
    kind: str


class FileSeen(BaseModel):
    """The ``file`` object of an event, as far as engagement reads it (other fields ignored)."""

    timezone: str | None = None
    status: FileStatus = "active"
    owner_staff_id: str | None = None
    birthday: date | None = None
    birthday_calendar: Literal["solar", "lunar"] = "solar"
    wedding_anniversary: date | None = None
    relations: list[RelationSeen] = []
    consents: ConsentsSeen = ConsentsSeen()
    version: int

    @property
    def spouse_customer_id(self) -> str | None:
        return next((r.customer_id for r in self.relations if r.kind == "spouse"), None)


@dataclass(frozen=True)
class CustomerChangeSeen:
    """One event of ``crm.customers.v1``: the file after the change, and a merge's survivor."""

    type: str
    store_id: str
    customer_id: str
    file: FileSeen
    merged_into: str | None = None

    @property
    def version(self) -> int:
        return self.file.version

    @classmethod
    def from_envelope(cls, event: EventEnvelope) -> "CustomerChangeSeen":
        payload = event.payload
        if "file" in payload:
            file = FileSeen.model_validate(payload["file"])
        else:
            file = FileSeen(timezone=payload.get("timezone"), version=UNVERSIONED)
        if (status := _STATUS_OF_TYPE.get(event.type)) is not None:
            file = file.model_copy(update={"status": status})
        merged_into = payload.get("merged_into")
        if event.type == CUSTOMER_MERGED and not merged_into:
            # An event's own fault: the consumer sends it to the dead-letter topic.
            raise ValueError("customer.merged without merged_into")
        return cls(
            type=event.type,
            store_id=event.store_id,
            customer_id=event.customer_id,
            file=file,
            merged_into=merged_into if file.status == "merged" else None,
        )
