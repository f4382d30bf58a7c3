"""The consumer's decoder: a file's event read by msgspec is the change its EventEnvelope gave,
and what msgspec refuses is decoded as before, so an event is applied or dead-lettered on the
same terms."""

import copy
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson
import pytest

from crm_libs.events.batches import decode_envelope
from crm_libs.events.envelope import EventEnvelope, Topics
from engagement_service.consumed import decode_event
from engagement_service.customers.events import CUSTOMER_EVENTS, CustomerChangeSeen

# A file as the customer service writes it (customer_service.customers.events.file_payload),
# with the fields engagement does not keep.
FILE: dict[str, Any] = {
    "timezone": "Asia/Shanghai",
    "status": "active",
    "owner_staff_id": "st-1",
    "birthday": "1951-08-14",
    "birthday_calendar": "lunar",
    "wedding_anniversary": "1975-05-01",
    "relations": [{"customer_id": "c9", "kind": "child"}, {"customer_id": "c2", "kind": "spouse"}],
    "referrer_id": "c7",
    "uses_competitor_products": False,
    "consents": {"sms": {"granted": True, "at": "2026-03-01T02:00:00Z", "channel": "in_store"}},
    "district": "徐汇区",
    "version": 4,
}


def event(type_: str, payload: dict[str, Any]) -> dict[str, Any]:
    """An envelope's JSON object, as EventEnvelope.to_bytes writes it."""
    return orjson.loads(
        EventEnvelope(type=type_, store_id="s1", customer_id="c1", payload=payload).to_bytes()
    )


def file_with(**changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(FILE), **changes}


# Every shape of the five types engagement applies.
SHAPES: dict[str, dict[str, Any]] = {
    "registered": event("customer.registered", {"timezone": "Asia/Shanghai", "file": FILE}),
    "registered, time zone alone": event("customer.registered", {"timezone": "Asia/Urumqi"}),
    "registered, nothing": event("customer.registered", {}),
    "registered, bare file": event("customer.registered", {"file": {"version": 1}}),
    "updated, no spouse, consent at +08:00": event(
        "customer.updated",
        {
            "file": file_with(
                relations=[],
                consents={
                    "sms": {"granted": False, "at": "2026-03-01T10:00:00+08:00", "channel": None}
                },
            ),
            "changed": ["relations"],
        },
    ),
    "archived (the type says)": event("customer.archived", {"file": FILE}),
    "erased": event("customer.erased", {"file": file_with(status="erased", birthday=None)}),
    "merged": event("customer.merged", {"file": file_with(status="merged"), "merged_into": "c2"}),
    "merged, the type says": event("customer.merged", {"file": FILE, "merged_into": "c2"}),
    "updated after a merge": event(
        "customer.updated", {"file": file_with(status="merged"), "merged_into": "c3"}
    ),
    "updated, survivor not for a live file": event(
        "customer.updated", {"file": FILE, "merged_into": "c3"}
    ),
}


def raw(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()  # orjson refuses an integer past 64 bits


def as_before(data: bytes) -> object:
    """What engagement made of the event before its decoder: the envelope (or the error that
    dead-letters it), then the handler's change of a file's event (or its error)."""
    try:
        envelope = decode_envelope(data, Topics.CUSTOMERS)
    except ValueError as exc:
        return ("undecodable", type(exc))
    return _applied(envelope)


def now(data: bytes) -> object:
    """The same, through the consumer's decoder."""
    try:
        decoded = decode_event(data, Topics.CUSTOMERS)
    except ValueError as exc:
        return ("undecodable", type(exc))
    if isinstance(decoded, CustomerChangeSeen):
        return decoded
    return _applied(decoded)


def _applied(envelope: EventEnvelope) -> object:
    if envelope.type not in CUSTOMER_EVENTS:
        return envelope
    try:
        change = CustomerChangeSeen.from_envelope(envelope)
    except ValueError as exc:
        return ("the handler fails", type(exc))
    return msgspec.structs.replace(change, event_id=str(envelope.event_id))


@pytest.mark.parametrize("shape", SHAPES)
def test_a_files_event_is_decoded_into_the_change_its_envelope_gave(shape: str) -> None:
    data = raw(SHAPES[shape])
    decoded = decode_event(data, Topics.CUSTOMERS)
    assert isinstance(decoded, CustomerChangeSeen)  # msgspec's way, not the envelope's
    assert decoded == as_before(data)
    assert decoded.event_id == SHAPES[shape]["event_id"]


def test_the_imports_registrations_take_msgspecs_way() -> None:
    # As the import's row checks write them (customer_checks._registered): orjson, a "Z" time.
    envelope = {
        "event_id": str(uuid.uuid4()),
        "type": "customer.registered",
        "version": 1,
        "occurred_at": datetime.now(UTC),
        "store_id": "s1",
        "customer_id": "c1",
        "payload": {"timezone": "Asia/Shanghai", "file": file_with(version=1)},
    }
    data = orjson.dumps(envelope, option=orjson.OPT_UTC_Z)
    decoded = decode_event(data, Topics.CUSTOMERS)
    assert isinstance(decoded, CustomerChangeSeen) and decoded == as_before(data)
    assert decoded.file.spouse_customer_id == "c2"


# Values of every JSON kind, and the spellings pydantic takes that msgspec does not.
ODD_VALUES: list[Any] = [
    None,
    "",
    "x",
    "3",
    3,
    3.0,
    3.5,
    -1,
    2**70,
    True,
    [],
    {},
    "1951-08-14",
    "1951-8-14",
    "2026-03-01T02:00:00Z",
    "2026-03-01",
    "2026-03-01T02:00:00",
    "2026-03-01 02:00:00Z",
    "2026-03-01t02:00:00z",
    "2026-03-01T02:00:00.123456789+08:00",
    "2026-03-01T02:00:00+0800",
    "2026-03-01T02:00:00+08",
    "2026-03-01T23:59:60Z",
    "2026-03-01T24:00:00Z",
    "20260301",
    "2026-02-29",
    "0000-01-01",
    "active",
    "merged",
    "erased",
    "lunar",
    "spouse",
    str(uuid.uuid4()).upper(),
    uuid.uuid4().hex,
]
_ABSENT = object()


def _paths(obj: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key and list index in a JSON object, deepest too."""
    found = []
    items = obj.items() if isinstance(obj, dict) else enumerate(obj)
    for key, value in items:
        found.append((*at, key))
        if isinstance(value, dict | list):
            found += _paths(value, (*at, key))
    return found


def _set(obj: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(obj)
    parent = changed
    for key in path[:-1]:
        parent = parent[key]
    if value is _ABSENT:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return changed


def test_every_value_anywhere_is_taken_or_refused_as_before() -> None:
    # Each field of each shape, given each odd value or left out: the decoder gives the change
    # the envelope gave, or the envelope itself (the handler then does as before), or fails
    # where the envelope failed.
    variants = [b"", b"[]", b"{", b'"x"', b"null"]
    for shape in SHAPES.values():
        for path in _paths(shape):
            variants += [raw(_set(shape, path, v)) for v in [*ODD_VALUES, _ABSENT]]
    # A type the topic's contract does not name, and one it names that engagement ignores.
    for type_ in ("customer.renamed", "customer.level_changed", "purchase.recorded"):
        variants.append(raw(_set(SHAPES["registered"], ("type",), type_)))
    fast = 0
    for data in variants:
        decoded, before = now(data), as_before(data)
        if b'"event_id"' not in data:  # EventEnvelope makes one up, anew each time
            decoded, before = _without_id(decoded), _without_id(before)
        assert decoded == before, data
        fast += isinstance(decode_event_or_none(data), CustomerChangeSeen)
    # Most of them still take msgspec's way (those that change nothing engagement reads).
    assert fast > len(variants) / 4


def _without_id(outcome: object) -> object:
    if isinstance(outcome, CustomerChangeSeen):
        return msgspec.structs.replace(outcome, event_id=None)
    if isinstance(outcome, EventEnvelope):
        return outcome.model_dump(exclude={"event_id"})
    return outcome


def decode_event_or_none(data: bytes) -> object:
    try:
        return decode_event(data, Topics.CUSTOMERS)
    except ValueError:
        return None


def test_the_other_topics_events_are_envelopes_as_before() -> None:
    sale = EventEnvelope(
        type="purchase.recorded", store_id="s1", customer_id="c1", payload={"purchase_id": "p1"}
    )
    assert decode_event(sale.to_bytes(), Topics.PURCHASES) == sale
