"""Decoding the events scoring consumes: msgspec's fast path gives what EventEnvelope gave, and
what it refuses is decoded as before, so an event is applied or dead-lettered on the same terms."""

import uuid
from decimal import Decimal

import orjson
import pytest

from crm_libs.events.envelope import EventEnvelope
from scoring_service.analysis.seen import ContactSeen, LineSeen, SaleSeen
from scoring_service.scores.aggregates import PurchaseSeen
from scoring_service.scores.consumed import DEFAULT_TIMEZONE, ConsumedEvent, decode_event


def purchase_payload(**changes: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "purchase_id": "p-1",
        "purchased_at": "2026-03-01T10:30:00+08:00",
        "purchased_on": "2026-03-01",
        "timezone": "Asia/Shanghai",
        "staff_id": "st-1",
        "total": "123.40",
        "lines": [
            {
                "sku": "DOG-1",
                "qty": 2,
                "unit_price": "50.00",
                "amount": "100.00",
                "days_per_unit": 30,
            },
            {
                "sku": "TOY-1",
                "qty": 1,
                "unit_price": "23.40",
                "amount": "23.40",
                "days_per_unit": 0,
            },
        ],
    }
    payload.update(changes)
    return payload


def envelope(type_: str = "purchase.recorded", **payload: object) -> EventEnvelope:
    return EventEnvelope(type=type_, store_id="s1", customer_id="c1", payload=payload)


def as_before(event: EventEnvelope) -> PurchaseSeen:
    return PurchaseSeen.from_payload(
        store_id=event.store_id, customer_id=event.customer_id, payload=event.payload
    )


# The analysis's share of purchase_payload(): its staff and its lines' amounts.
SALE = SaleSeen(
    "p-1",
    "st-1",
    (
        LineSeen("p-1", 0, "p-1", "DOG-1", None, Decimal("100.00")),
        LineSeen("p-1", 1, "p-1", "TOY-1", None, Decimal("23.40")),
    ),
)


def test_a_purchase_decodes_to_what_the_envelope_gave() -> None:
    event = envelope(**purchase_payload())
    decoded = decode_event(event.to_bytes())
    assert decoded == ConsumedEvent(str(event.event_id), purchase=as_before(event), sale=SALE)
    assert decoded.purchase is not None
    assert decoded.purchase.supply_days == 60 and decoded.purchase.total == Decimal("123.40")


def test_registrations_and_other_types() -> None:
    registered = envelope("customer.registered", timezone="Europe/Berlin")
    assert decode_event(registered.to_bytes()).prospect == ("c1", "s1", "Europe/Berlin")
    unzoned = envelope("customer.registered")
    assert decode_event(unzoned.to_bytes()).prospect == ("c1", "s1", DEFAULT_TIMEZONE)
    other = envelope("customer.updated", name="x")
    assert decode_event(other.to_bytes()) == ConsumedEvent(str(other.event_id))


def test_what_the_fast_path_refuses_is_decoded_as_before() -> None:
    event = envelope(**purchase_payload())
    raw = orjson.loads(event.to_bytes())
    # Another spelling of the id, a version and quantities as text: EventEnvelope accepts them.
    raw["event_id"] = str(event.event_id).upper()
    raw["version"] = "1"
    raw["payload"]["lines"][0]["qty"] = "2"
    decoded = decode_event(orjson.dumps(raw))
    assert decoded == ConsumedEvent(str(event.event_id), purchase=as_before(event), sale=SALE)


def test_a_refund_s_lines_are_negative_and_a_visit_is_a_contact_once_it_says_reached() -> None:
    refund = envelope(
        "purchase.refunded",
        purchase_id="p-1",
        refund_id="r-1",
        refunded_at="2026-03-02T10:00:00+08:00",
        total="50.00",
        lines=[{"sku": "DOG-1", "qty": 1, "amount": "50.00", "days_per_unit": 30}],
    )
    assert decode_event(refund.to_bytes()).sale == SaleSeen(
        "p-1", None, (LineSeen("r-1", 0, "p-1", "DOG-1", None, Decimal("-50.00")),), True
    )
    visit = {"visit_id": "v-1", "occurred_at": "2026-03-02T10:00:00+08:00", "collected": {}}
    told = envelope("visit.recorded", **visit, method="phone", reached=False)
    contact = decode_event(told.to_bytes()).contact
    assert contact is not None and contact == ContactSeen(
        "v-1", "s1", "c1", contact.occurred_at, "phone", False
    )
    # Published before method and reached were carried: nobody can tell, not counted.
    assert decode_event(envelope("visit.recorded", **visit).to_bytes()).contact is None
    # A visit the customer service would dead-letter is still only claimed here.
    assert decode_event(envelope("visit.recorded", note="x").to_bytes()).contact is None


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        orjson.dumps({"type": "purchase.recorded", "store_id": "s1"}),  # no customer
        orjson.dumps({**orjson.loads(envelope().to_bytes()), "payload": [1, 2]}),
        orjson.dumps({**orjson.loads(envelope().to_bytes()), "event_id": "not-a-uuid"}),
        envelope(**purchase_payload(total="a lot")).to_bytes(),
        envelope(**purchase_payload(lines="nonsense")).to_bytes(),
        envelope(**{k: v for k, v in purchase_payload().items() if k != "purchase_id"}).to_bytes(),
        envelope("customer.registered", timezone=8).to_bytes(),
    ],
)
def test_an_event_scoring_cannot_apply_is_a_value_error(raw: bytes) -> None:
    """The consumer dead-letters what its decoder refuses with a ValueError."""
    with pytest.raises(ValueError):
        decode_event(raw)


def test_event_ids_are_claimed_in_one_spelling() -> None:
    event_id = uuid.uuid4()
    event = EventEnvelope(
        event_id=event_id, type="customer.updated", store_id="s", customer_id="c", payload={}
    )
    raw = orjson.loads(event.to_bytes())
    for spelling in (str(event_id), str(event_id).upper(), event_id.hex):
        raw["event_id"] = spelling
        assert decode_event(orjson.dumps(raw)).event_id == str(event_id)
