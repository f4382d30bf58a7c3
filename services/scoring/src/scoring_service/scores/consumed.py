"""The events scoring consumes, decoded straight into the fields it reads.

A batch of thousands of events through pydantic (a model, a payload dict and its lines per
event) cost more Python time than everything else scoring does with the batch; msgspec decodes
and type-checks the same JSON into the few fields below, and nothing of it is tracked by the
garbage collector. What msgspec refuses (a field of another type than the producers write, a
missing one) is decoded exactly as before, through :class:`EventEnvelope`, so an event is
accepted or dead-lettered on the same terms either way.

Either way, a type its topic's contract does not name (:mod:`crm_libs.events.event_types`) is
refused, so the consumer dead-letters it; the contract's types scoring has no use for are
claimed and nothing more. What the analysis keeps beside the facts (a purchase's staff and its
lines' amounts, a refund's lines, the file's district, ``visit.recorded`` for the contact times)
is decoded with the rest (analysis/seen.py).
"""

from decimal import InvalidOperation

import msgspec

from crm_libs.events.envelope import EventEnvelope
from crm_libs.events.event_types import (
    CUSTOMER_ARCHIVED,
    CUSTOMER_ERASED,
    CUSTOMER_MERGED,
    CUSTOMER_REGISTERED,
    CUSTOMER_UPDATED,
    EVENT_ATTENDED,
    EVENT_CANCELLED,
    EVENT_GUEST_BROUGHT,
    EVENT_SCHEDULED,
    PURCHASE_RECORDED,
    PURCHASE_REFUNDED,
    VISIT_RECORDED,
    check_event_type,
)
from scoring_service.scores.aggregates import PurchaseSeen
from scoring_service.scores.consumed_event import (
    ConsumedEvent,
    Merged,
    Prospect,
    bought,
    cancelled_event,
    district_of,
    link_of,
    refund_event,
    registered_district,
    registered_link,
    sale_of,
    scheduled_event,
    signal_event,
    visit_event,
)
from scoring_service.scores.consumed_wire import (
    CANONICAL_UUID,
    DEFAULT_TIMEZONE,
    WireAttended,
    WireCancelled,
    WireEnvelope,
    WireFile,
    WireFileChange,
    WireGuestBrought,
    WireMerge,
    WirePurchase,
    WireRefund,
    WireRegistration,
    WireScheduled,
    WireVisit,
)
from scoring_service.scores.signals import ATTENDED, GUEST_BROUGHT, Link

# Importable from here, where the handlers, the merges and the tests take them.
__all__ = ["DEFAULT_TIMEZONE", "ConsumedEvent", "Merged", "Prospect", "decode_event"]

# purchase.refunded is applied by its refund id (scores/refund_facts.py), to the purchase's fact
# once that is stored. customer.merged: the merged-away file's id is the envelope's,
# ``merged_into`` the survivor (scores/merges.py). ``customer.erased`` changes nothing but the
# link: scoring holds ids, store, time zone and amounts, no personal data, and erasure keeps the
# anonymous sales figures.
# The other customer events whose ``payload.file`` carries the referrer and competitors' products
# (deploy/README.md); a registration and a merge carry it too.
_FILE_EVENTS = frozenset({CUSTOMER_UPDATED, CUSTOMER_ARCHIVED, CUSTOMER_ERASED})
# crm.engagement.v1: event.attended and event.guest_brought are the member-event signals;
# event.scheduled and event.cancelled the stores' member events, for the score's next event to
# invite to (scores/member_events.py), whose envelope's ``customer_id`` is the member event's id
# (its key: one event's announcements in order on one partition).

_envelopes = msgspec.json.Decoder(WireEnvelope)
_purchases = msgspec.json.Decoder(WirePurchase)
_refunds = msgspec.json.Decoder(WireRefund)
_registrations = msgspec.json.Decoder(WireRegistration)
_merges = msgspec.json.Decoder(WireMerge)
_file_changes = msgspec.json.Decoder(WireFileChange)
_visits = msgspec.json.Decoder(WireVisit)
_attendances = msgspec.json.Decoder(WireAttended)
_guests = msgspec.json.Decoder(WireGuestBrought)
_schedules = msgspec.json.Decoder(WireScheduled)
_cancellations = msgspec.json.Decoder(WireCancelled)
_objects = msgspec.json.Decoder(dict)
_canonical_uuid = CANONICAL_UUID.fullmatch


def decode_event(raw: bytes, topic: str | None = None) -> ConsumedEvent:
    """The event in ``raw``, read from ``topic``; ValueError if it is not one scoring can apply
    or ``topic``'s contract does not name its type (a dead letter). Without a topic (a decoding
    test), any type is taken."""
    try:
        envelope = _envelopes.decode(raw)
        if _canonical_uuid(envelope.event_id) is None:
            return _decode_as_before(raw, topic)
        if topic is not None:
            check_event_type(topic, envelope.type)
        if envelope.type == PURCHASE_RECORDED:
            p = _purchases.decode(envelope.payload)
            return ConsumedEvent(
                envelope.event_id,
                purchase=PurchaseSeen(
                    p.purchase_id,
                    envelope.store_id,
                    envelope.customer_id,
                    p.purchased_at,
                    p.purchased_on,
                    p.timezone,
                    p.total,
                    sum(line.qty * line.days_per_unit for line in p.lines),
                    *bought(p.lines),
                ),
                sale=sale_of(p.purchase_id, p.purchase_id, p.staff_id, p.lines),
            )
        if envelope.type == PURCHASE_REFUNDED:
            return refund_event(envelope.event_id, envelope, _refunds.decode(envelope.payload))
        if envelope.type == CUSTOMER_REGISTERED:
            r = _registrations.decode(envelope.payload)
            return ConsumedEvent(
                envelope.event_id,
                prospect=(envelope.customer_id, envelope.store_id, r.timezone),
                link=registered_link(envelope.customer_id, envelope.store_id, r.file),
                district=registered_district(envelope.customer_id, envelope.store_id, r.file),
            )
        if envelope.type == CUSTOMER_MERGED:
            m = _merges.decode(envelope.payload)
            return ConsumedEvent(
                envelope.event_id,
                merge=(envelope.customer_id, m.merged_into, envelope.store_id),
                link=link_of(envelope.customer_id, envelope.store_id, m.file),
            )
        if envelope.type in _FILE_EVENTS:
            f = _file_changes.decode(envelope.payload)
            return ConsumedEvent(
                envelope.event_id,
                link=link_of(envelope.customer_id, envelope.store_id, f.file),
                district=district_of(envelope.customer_id, envelope.store_id, f.file),
            )
        if envelope.type == EVENT_ATTENDED:
            a = _attendances.decode(envelope.payload)
            return signal_event(envelope.event_id, envelope, ATTENDED, a.event_id, a.attended_at)
        if envelope.type == EVENT_GUEST_BROUGHT:
            g = _guests.decode(envelope.payload)
            return signal_event(
                envelope.event_id, envelope, GUEST_BROUGHT, g.event_id, g.brought_at
            )
        if envelope.type == EVENT_SCHEDULED:
            return scheduled_event(envelope, _schedules.decode(envelope.payload))
        if envelope.type == EVENT_CANCELLED:
            return cancelled_event(envelope, _cancellations.decode(envelope.payload))
        if envelope.type == VISIT_RECORDED:
            return visit_event(envelope.event_id, envelope, _visits.decode(envelope.payload))
        # A type of the contract scoring has no use for: claimed, nothing more (its payload an
        # object all the same).
        _objects.decode(envelope.payload)
        return ConsumedEvent(envelope.event_id)
    except msgspec.DecodeError:  # not JSON, or not of the types above (ValidationError)
        return _decode_as_before(raw, topic)


def _link_as_before(
    envelope: EventEnvelope, payload: dict[str, object], *, registered: bool = False
) -> Link | None:
    file = payload.get("file")
    if file is None:  # a registration published before the file was carried
        return None
    wire = msgspec.convert(file, WireFile, strict=False)
    linked = registered_link if registered else link_of
    return linked(envelope.customer_id, envelope.store_id, wire)


def _decode_as_before(raw: bytes, topic: str | None) -> ConsumedEvent:
    """Through EventEnvelope and the payload lookups scoring used before msgspec."""
    # pydantic's ValidationError and orjson's JSONDecodeError are ValueErrors: a dead letter.
    envelope = EventEnvelope.from_bytes(raw)
    if topic is not None:
        check_event_type(topic, envelope.type)
    event_id = str(envelope.event_id)
    payload = envelope.payload
    try:
        if envelope.type == PURCHASE_RECORDED:
            purchase = PurchaseSeen.from_payload(
                store_id=envelope.store_id, customer_id=envelope.customer_id, payload=payload
            )
            # The analysis's lines where they convert; the purchase counts either way.
            try:
                p = msgspec.convert(payload, WirePurchase, strict=False)
            except msgspec.ValidationError:
                return ConsumedEvent(event_id, purchase=purchase)
            return ConsumedEvent(
                event_id,
                purchase=purchase,
                sale=sale_of(p.purchase_id, p.purchase_id, p.staff_id, p.lines),
            )
        if envelope.type == CUSTOMER_REGISTERED:
            timezone = payload.get("timezone", DEFAULT_TIMEZONE)
            if not isinstance(timezone, str):
                raise TypeError(f"timezone is {type(timezone).__name__}, not text")
            return ConsumedEvent(
                event_id,
                prospect=(envelope.customer_id, envelope.store_id, timezone),
                link=_link_as_before(envelope, payload, registered=True),
            )
        if envelope.type == CUSTOMER_MERGED:
            survivor = payload["merged_into"]
            if not isinstance(survivor, str):
                raise TypeError(f"merged_into is {type(survivor).__name__}, not text")
            return ConsumedEvent(
                event_id,
                merge=(envelope.customer_id, survivor, envelope.store_id),
                link=_link_as_before(envelope, payload),
            )
        if envelope.type in _FILE_EVENTS:
            return ConsumedEvent(event_id, link=_link_as_before(envelope, payload))
        # New types (no pydantic decoding before them): msgspec again, converting leniently
        # (a refused value is a msgspec.ValidationError, a ValueError: a dead letter).
        if envelope.type == PURCHASE_REFUNDED:
            return refund_event(
                event_id, envelope, msgspec.convert(payload, WireRefund, strict=False)
            )
        if envelope.type == EVENT_SCHEDULED:
            return scheduled_event(envelope, msgspec.convert(payload, WireScheduled, strict=False))
        if envelope.type == EVENT_CANCELLED:
            return cancelled_event(envelope, msgspec.convert(payload, WireCancelled, strict=False))
        if envelope.type == EVENT_ATTENDED:
            a = msgspec.convert(payload, WireAttended, strict=False)
            return signal_event(event_id, envelope, ATTENDED, a.event_id, a.attended_at)
        if envelope.type == EVENT_GUEST_BROUGHT:
            g = msgspec.convert(payload, WireGuestBrought, strict=False)
            return signal_event(event_id, envelope, GUEST_BROUGHT, g.event_id, g.brought_at)
        if envelope.type == VISIT_RECORDED:
            # Claimed whatever it holds, as before scoring read visits: the customer service
            # is the one to refuse a visit it cannot apply.
            try:
                v = msgspec.convert(payload, WireVisit, strict=False)
            except msgspec.ValidationError:
                return ConsumedEvent(event_id)
            return visit_event(event_id, envelope, v)
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        raise ValueError(f"{envelope.type} {event_id}: {exc!r}") from exc
    return ConsumedEvent(event_id)
