"""An imported row's file as it is written: its COPY tuple and its ``customer.registered``
outbox row, made in the row-check processes so that writing a chunk (customer_import.py) only
sends them."""

import operator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import orjson

from crm_libs.ids import new_id
from customer_service.customers import events
from customer_service.imports import copy_rows
from customer_service.imports.row_ids import RowIds

if TYPE_CHECKING:
    from customer_service.customers.models import Customer

# The columns a file is written with (what a registration fills; the rest keep their defaults),
# each with its type's encoder in the binary COPY format (copy_rows.py): ``text`` for ``varchar``
# too, ``jsonb`` from the JSON text ``record_of`` makes.
_FORMATS: dict[str, copy_rows.Encoder] = {
    "id": copy_rows.text,
    "store_id": copy_rows.text,
    "name": copy_rows.text,
    "name_keys": copy_rows.text,
    "gender": copy_rows.text,
    "ethnicity": copy_rows.text,
    "approximate_age": copy_rows.integer,
    "birthday": copy_rows.day,
    "birthday_calendar": copy_rows.text,
    "wedding_anniversary": copy_rows.day,
    "email": copy_rows.text,
    "address": copy_rows.jsonb,
    "source": copy_rows.jsonb,
    "referrer_id": copy_rows.text,
    "owner_staff_id": copy_rows.text,
    "prospect_stage": copy_rows.text,
    "phones_encrypted": copy_rows.text,
    "phone_hashes": copy_rows.text_array,
    "phone_tails": copy_rows.text_array,
    "id_number_encrypted": copy_rows.text,
    "status": copy_rows.text,
    "version": copy_rows.integer,
}
COLUMNS = tuple(_FORMATS)
_ROW = copy_rows.RowFormat(tuple(_FORMATS.values()))
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
    """A file as its COPY tuple (``COLUMNS`` in the binary format: copy_rows.py) and its
    ``customer.registered`` outbox row."""

    row: bytes
    event_id: str
    envelope: str

    def __reduce__(self) -> tuple[Any, ...]:
        # Unpickled as the tuple it is, in C: a named tuple's own way calls its Python
        # ``__new__`` for each row the service receives (and ``__getnewargs__`` here).
        return tuple.__new__, (Sealed, tuple(self))


def sealed(file: NewFile, *, timezone: str, ids: RowIds | None = None) -> Sealed:
    """The file's COPY tuple and its registration (its event id from ``ids``, else drawn now)."""
    return Sealed(
        _ROW(record_of(file)), *_registered(file, timezone=timezone, ids=ids or RowIds(1))
    )


_VALUES = operator.attrgetter(*COLUMNS)
_JSON_AT = tuple(i for i, name in enumerate(COLUMNS) if name in _JSON_COLUMNS)


def record_of(customer: NewFile) -> tuple[Any, ...]:
    """The file's values in ``COLUMNS``' order, the JSON columns as their text."""
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
