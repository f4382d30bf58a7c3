"""The JSON of ``crm.customers.v1`` as msgspec decodes it: the envelope and, of its payload, only
the fields engagement keeps (customers/events.py says which, and what each is for).

Every field has the type the pydantic models of customers/events.py accept in their plainest
form; anything else (a number written as text, a missing ``version``) is refused here and
decoded the way it was before, through those models (engagement_service/consumed.py). None of
these objects is tracked by the garbage collector: they hold text, numbers, dates and each
other, never a cycle.
"""

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec

FileStatus = Literal["active", "archived", "merged", "erased"]

# The canonical text of a UUID, as EventEnvelope writes it (and as a claim stores it): claimed
# as it is, without a UUID object. Any other spelling is decoded the long way.
_UUID_TEXT = Annotated[
    str, msgspec.Meta(pattern="^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
]

# A 64-bit integer: orjson reads one past 64 bits as a float, which pydantic then judges
# (EventEnvelope.from_bytes), so such a number is decoded the long way.
_INTEGER = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


class WireSmsConsent(msgspec.Struct, frozen=True, gc=False):
    granted: bool = False
    at: datetime | None = None
    channel: str | None = None


class WireConsents(msgspec.Struct, frozen=True, gc=False):
    sms: WireSmsConsent = msgspec.field(default_factory=WireSmsConsent)


class WireRelation(msgspec.Struct, frozen=True, gc=False):
    customer_id: str
    kind: str


class WireFile(msgspec.Struct, frozen=True, gc=False):
    """The ``file`` object of an event, as far as engagement reads it (other fields ignored)."""

    version: _INTEGER
    timezone: str | None = None
    status: FileStatus = "active"
    owner_staff_id: str | None = None
    birthday: date | None = None
    birthday_calendar: Literal["solar", "lunar"] = "solar"
    wedding_anniversary: date | None = None
    relations: tuple[WireRelation, ...] = ()
    consents: WireConsents = msgspec.field(default_factory=WireConsents)

    @property
    def spouse_customer_id(self) -> str | None:
        for relation in self.relations:
            if relation.kind == "spouse":
                return relation.customer_id
        return None


class WireChange(msgspec.Struct, gc=False):
    """A customer event's payload: the file after the change, or (a registration published
    before the file was carried) the time zone alone; a merge's survivor."""

    file: WireFile | msgspec.UnsetType = msgspec.UNSET
    timezone: str | None = None
    merged_into: str | None = None


class WireEnvelope(msgspec.Struct, gc=False):
    """A customer event: EventEnvelope's fields, each refused where EventEnvelope refuses it
    (``occurred_at`` may be left out, not null), and the payload decoded in the same pass (the
    decoder looks at the type after)."""

    event_id: _UUID_TEXT
    type: str
    store_id: str
    customer_id: str
    payload: WireChange = msgspec.field(default_factory=WireChange)
    version: _INTEGER = 1
    occurred_at: datetime | msgspec.UnsetType = msgspec.UNSET
