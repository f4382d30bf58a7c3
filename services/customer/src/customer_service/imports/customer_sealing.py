"""An imported row's file as it is written: its COPY record and its ``customer.registered``
outbox row, made in the row-check processes so that writing a chunk (customer_import.py) only
sends them."""

import operator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import orjson

from crm_libs.ids import new_id
from customer_service.customers import events
from customer_service.imports.row_ids import RowIds

if TYPE_CHECKING:
    from customer_service.customers.models import Customer

# The columns a file is written with (what a registration fills; the rest keep their defaults).
COLUMNS = (
    "id",
    "store_id",
    "name",
    "name_keys",
    "gender",
    "ethnicity",
    "approximate_age",
    "birthday",
    "birthday_calendar",
    "wedding_anniversary",
    "email",
    "address",
    "source",
    "referrer_id",
    "owner_staff_id",
    "prospect_stage",
    "phones_encrypted",
    "phone_hashes",
    "phone_tails",
    "id_number_encrypted",
    "status",
    "version",
)
_JSON_COLUMNS = frozenset({"address", "source"})


@dataclass(slots=True)
class NewFile:
    """A file to write, under the model's column names (``Customer``'s): not an ORM object, whose
    construction costs more than all the row's checks together."""

    store_id: str
    name: str
    name_keys: str
    gender: str | None
    ethnicity: str | None
    approximate_age: int | None
    birthday: date | None
    birthday_calendar: str
    wedding_anniversary: date | None
    email: str | None
    address: dict[str, Any] | None
    source: dict[str, Any] | None
    referrer_id: str | None
    owner_staff_id: str | None
    phones_encrypted: str | None
    phone_hashes: list[str]
    phone_tails: list[str]
    id_number_encrypted: str | None
    id: str = field(default_factory=new_id)
    prospect_stage: str = "collected"
    status: str = "active"
    version: int = 1
    consents: dict[str, Any] | None = None


class Sealed(NamedTuple):
    """A file as its COPY record and its ``customer.registered`` outbox row."""

    record: tuple[Any, ...]
    event_id: str
    envelope: str

    def __reduce__(self) -> tuple[Any, ...]:
        # Unpickled as the tuple it is, in C: a named tuple's own way calls its Python
        # ``__new__`` for each row the service receives (and ``__getnewargs__`` here).
        return tuple.__new__, (Sealed, tuple(self))


def sealed(file: NewFile, *, timezone: str, ids: RowIds | None = None) -> Sealed:
    """The file's record and its registration (its event id from ``ids``, else drawn now)."""
    return Sealed(record_of(file), *_registered(file, timezone=timezone, ids=ids or RowIds(1)))


_VALUES = operator.attrgetter(*COLUMNS)
_JSON_AT = tuple(i for i, name in enumerate(COLUMNS) if name in _JSON_COLUMNS)


def record_of(customer: NewFile) -> tuple[Any, ...]:
    values = list(_VALUES(customer))
    for i in _JSON_AT:
        values[i] = _json_text(values[i])
    return tuple(values)


def _json_text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _registered(customer: NewFile, *, timezone: str, ids: RowIds) -> tuple[str, str]:
    """``customer.registered`` as a registration stages it (customers/events.py's payload): its
    id and the envelope's JSON text, written as ``EventEnvelope.to_bytes`` writes it (a test
    proves them equal) without building and dumping the model, a tenth of a row's checks."""
    # The payload reads the file's attributes by the model's names, which NewFile shares.
    file = events.file_payload(cast("Customer", customer), timezone=timezone, relations=[])
    event_id = ids.event_id()
    envelope = {
        "event_id": event_id,
        "type": events.CUSTOMER_REGISTERED,
        "version": 1,
        "occurred_at": datetime.now(UTC),
        "store_id": customer.store_id,
        "customer_id": customer.id,
        "payload": {"timezone": timezone, "file": file},
    }
    return event_id, orjson.dumps(envelope, option=orjson.OPT_UTC_Z).decode()
