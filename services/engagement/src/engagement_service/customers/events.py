"""The fields of ``crm.customers.v1`` this service reads (the customer service publishes them).

Every event carries the file as it is after the change (``payload.file``); engagement keeps what
tasks and care need and ignores the rest. ``customer.registered`` was first published with the
time zone alone (``payload: {timezone}``): such an event still registers the file.
"""

from datetime import date, datetime
from typing import Literal

import msgspec
from pydantic import BaseModel

from crm_libs.events.envelope import EventEnvelope
from engagement_service.customers.wire import FileStatus, WireEnvelope, WireFile

CUSTOMER_REGISTERED = "customer.registered"
CUSTOMER_UPDATED = "customer.updated"
CUSTOMER_ARCHIVED = "customer.archived"
CUSTOMER_MERGED = "customer.merged"
CUSTOMER_ERASED = "customer.erased"
CUSTOMER_EVENTS = frozenset(
    {CUSTOMER_REGISTERED, CUSTOMER_UPDATED, CUSTOMER_ARCHIVED, CUSTOMER_MERGED, CUSTOMER_ERASED}
)

# The type says what happened, whatever the file's status reads.
_STATUS_OF_TYPE: dict[str, FileStatus] = {
    CUSTOMER_ARCHIVED: "archived",
    CUSTOMER_MERGED: "merged",
    CUSTOMER_ERASED: "erased",
}

# A registration without a file predates versioned events: any versioned event of the same file
# (the customer service's versions start at 1) is newer.
UNVERSIONED = 0


def applied_by_version(event: "EventEnvelope | CustomerChangeSeen") -> bool:
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
    """The ``file`` object of an event, as far as engagement reads it (other fields ignored):
    how an event msgspec refuses is validated (customers/wire.py's WireFile reads the same)."""

    timezone: str | None = None
    status: FileStatus = "active"
    owner_staff_id: str | None = None
    birthday: date | None = None
    birthday_calendar: Literal["solar", "lunar"] = "solar"
    wedding_anniversary: date | None = None
    relations: list[RelationSeen] = []
    consents: ConsentsSeen = ConsentsSeen()
    version: int


class CustomerChangeSeen(msgspec.Struct, frozen=True, gc=False):
    """One event of ``crm.customers.v1``: the file after the change, and a merge's survivor.

    Made from an EventEnvelope (:meth:`from_envelope`), or straight from the event's JSON by
    the consumer's decoder (:meth:`from_wire`): then it stands for the event in the batch, and
    carries the event's id for its claim."""

    type: str
    store_id: str
    customer_id: str
    file: WireFile
    merged_into: str | None = None
    event_id: str | None = None

    @property
    def version(self) -> int:
        return self.file.version

    @classmethod
    def from_envelope(cls, event: EventEnvelope) -> "CustomerChangeSeen":
        payload = event.payload
        if "file" in payload:
            seen = FileSeen.model_validate(payload["file"])
        else:
            seen = FileSeen(timezone=payload.get("timezone"), version=UNVERSIONED)
        # Validated by pydantic as before; held as the consumer's decoder holds it.
        file = msgspec.convert(seen, WireFile, from_attributes=True)
        if (status := _STATUS_OF_TYPE.get(event.type)) is not None:
            file = msgspec.structs.replace(file, status=status)
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

    @classmethod
    def from_wire(cls, envelope: WireEnvelope) -> "CustomerChangeSeen | None":
        """The change as :meth:`from_envelope` makes it of the same event, with its id; None
        where that raises (a merge without its survivor), for the event to be decoded as
        before and fail as before."""
        change = envelope.payload
        file = (
            change.file
            if isinstance(change.file, WireFile)
            else WireFile(timezone=change.timezone, version=UNVERSIONED)
        )
        if (status := _STATUS_OF_TYPE.get(envelope.type)) is not None and file.status != status:
            file = msgspec.structs.replace(file, status=status)
        merged_into = change.merged_into
        if envelope.type == CUSTOMER_MERGED and not merged_into:
            return None
        return cls(
            envelope.type,
            envelope.store_id,
            envelope.customer_id,
            file,
            merged_into if file.status == "merged" else None,
            envelope.event_id,
        )
