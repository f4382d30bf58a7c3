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

from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated

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
from scoring_service.analysis.seen import ContactSeen, DistrictSeen, LineSeen, SaleSeen
from scoring_service.scores.aggregates import PurchaseSeen
from scoring_service.scores.member_events import Cancelled, Scheduled
from scoring_service.scores.refund_facts import RefundSeen
from scoring_service.scores.signals import ATTENDED, GUEST_BROUGHT, Link, Signal

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
# The time of an announcement whose envelope gives none: older than any that does.
_NO_TIME = datetime(1970, 1, 1, tzinfo=UTC)
# A registration that does not say: the country's zone (DOMAIN.md: stores are in China).
DEFAULT_TIMEZONE = "Asia/Shanghai"

# The canonical text of a UUID, as EventEnvelope writes it: claimed as it is, no UUID object.
# Any other spelling goes the long way and is claimed in this form all the same.
_UUID_TEXT = Annotated[
    str, msgspec.Meta(pattern="^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
]


# A registered customer file: (customer_id, store_id, timezone).
Prospect = tuple[str, str, str]
# A merged-away file: (customer_id, survivor_id, store_id).
Merged = tuple[str, str, str]


class ConsumedEvent(msgspec.Struct, gc=False):
    """One consumed event: its id (for the claim) and what scoring does with it, if anything."""

    event_id: str
    purchase: PurchaseSeen | None = None
    prospect: Prospect | None = None
    merge: Merged | None = None
    link: Link | None = None
    signal: Signal | None = None
    scheduled: Scheduled | None = None
    cancelled: Cancelled | None = None
    refund: RefundSeen | None = None
    # The analysis's (analysis/seen.py): a purchase's or refund's lines, a file's district, a
    # visit.
    sale: SaleSeen | None = None
    district: DistrictSeen | None = None
    contact: ContactSeen | None = None


class _Envelope(msgspec.Struct, gc=False):
    event_id: _UUID_TEXT
    type: str
    store_id: str
    customer_id: str
    payload: msgspec.Raw
    version: int = 1
    occurred_at: datetime | None = None


class _Line(msgspec.Struct, gc=False):
    qty: int
    days_per_unit: int
    # What was bought (scores/next_purchase.py); a line without a sku is not kept as bought.
    sku: str | None = None
    category: str | None = None
    # The line's total (the analysis's revenue by product); a line without one is not kept.
    amount: Decimal | None = None


class _Purchase(msgspec.Struct, gc=False):
    purchase_id: str
    purchased_at: datetime
    purchased_on: date
    timezone: str
    total: Decimal
    lines: list[_Line]
    staff_id: str | None = None


class _Refund(msgspec.Struct, gc=False):
    purchase_id: str
    refund_id: str
    refunded_at: datetime
    total: Decimal
    lines: list[_Line]


class _File(msgspec.Struct, gc=False):
    version: int
    referrer_id: str | None = None
    uses_competitor_products: bool = False
    district: str | None = None


class _Registration(msgspec.Struct, gc=False):
    timezone: str = DEFAULT_TIMEZONE
    file: _File | None = None


class _Merge(msgspec.Struct, gc=False):
    merged_into: str
    file: _File | None = None


class _FileChange(msgspec.Struct, gc=False):
    file: _File | None = None


class _Visit(msgspec.Struct, gc=False):
    visit_id: str
    occurred_at: datetime
    # Absent in a visit published before they were carried: not kept (analysis/seen.py).
    method: str | None = None
    reached: bool | None = None


class _Attended(msgspec.Struct, gc=False):
    event_id: str
    attended_at: datetime


class _GuestBrought(msgspec.Struct, gc=False):
    event_id: str
    brought_at: datetime


class _Scheduled(msgspec.Struct, gc=False):
    event_id: str
    starts_at: datetime
    title: str | None = None


class _Cancelled(msgspec.Struct, gc=False):
    event_id: str
    cancelled_at: datetime | None = None


_envelopes = msgspec.json.Decoder(_Envelope)
_purchases = msgspec.json.Decoder(_Purchase)
_refunds = msgspec.json.Decoder(_Refund)
_registrations = msgspec.json.Decoder(_Registration)
_merges = msgspec.json.Decoder(_Merge)
_file_changes = msgspec.json.Decoder(_FileChange)
_visits = msgspec.json.Decoder(_Visit)
_attendances = msgspec.json.Decoder(_Attended)
_guests = msgspec.json.Decoder(_GuestBrought)
_schedules = msgspec.json.Decoder(_Scheduled)
_cancellations = msgspec.json.Decoder(_Cancelled)
_objects = msgspec.json.Decoder(dict)


def decode_event(raw: bytes, topic: str | None = None) -> ConsumedEvent:
    """The event in ``raw``, read from ``topic``; ValueError if it is not one scoring can apply
    or ``topic``'s contract does not name its type (a dead letter). Without a topic (a decoding
    test), any type is taken."""
    try:
        envelope = _envelopes.decode(raw)
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
                    *_bought(p.lines),
                ),
                sale=_sale(p.purchase_id, p.purchase_id, p.staff_id, p.lines),
            )
        if envelope.type == PURCHASE_REFUNDED:
            return _refund_event(envelope.event_id, envelope, _refunds.decode(envelope.payload))
        if envelope.type == CUSTOMER_REGISTERED:
            r = _registrations.decode(envelope.payload)
            return ConsumedEvent(
                envelope.event_id,
                prospect=(envelope.customer_id, envelope.store_id, r.timezone),
                link=_link(envelope.customer_id, envelope.store_id, r.file),
                district=_district(envelope.customer_id, envelope.store_id, r.file),
            )
        if envelope.type == CUSTOMER_MERGED:
            m = _merges.decode(envelope.payload)
            return ConsumedEvent(
                envelope.event_id,
                merge=(envelope.customer_id, m.merged_into, envelope.store_id),
                link=_link(envelope.customer_id, envelope.store_id, m.file),
            )
        if envelope.type in _FILE_EVENTS:
            f = _file_changes.decode(envelope.payload)
            return ConsumedEvent(
                envelope.event_id,
                link=_link(envelope.customer_id, envelope.store_id, f.file),
                district=_district(envelope.customer_id, envelope.store_id, f.file),
            )
        if envelope.type == EVENT_ATTENDED:
            a = _attendances.decode(envelope.payload)
            return _signal_event(envelope.event_id, envelope, ATTENDED, a.event_id, a.attended_at)
        if envelope.type == EVENT_GUEST_BROUGHT:
            g = _guests.decode(envelope.payload)
            return _signal_event(
                envelope.event_id, envelope, GUEST_BROUGHT, g.event_id, g.brought_at
            )
        if envelope.type == EVENT_SCHEDULED:
            return _scheduled(envelope, _schedules.decode(envelope.payload))
        if envelope.type == EVENT_CANCELLED:
            return _cancelled(envelope, _cancellations.decode(envelope.payload))
        if envelope.type == VISIT_RECORDED:
            return _visit_event(envelope.event_id, envelope, _visits.decode(envelope.payload))
        # A type of the contract scoring has no use for: claimed, nothing more (its payload an
        # object all the same).
        _objects.decode(envelope.payload)
        return ConsumedEvent(envelope.event_id)
    except msgspec.DecodeError:  # not JSON, or not of the types above (ValidationError)
        return _decode_as_before(raw, topic)


def _signal_event(
    event_id: str,
    envelope: "_Envelope | EventEnvelope",
    kind: str,
    member_event_id: str,
    at: datetime,
) -> ConsumedEvent:
    """A member-event signal of the envelope's customer, keyed by the member event."""
    return ConsumedEvent(
        event_id,
        signal=(kind, member_event_id, envelope.customer_id, envelope.store_id, at),
    )


def _refund_event(
    event_id: str, envelope: "_Envelope | EventEnvelope", r: _Refund
) -> ConsumedEvent:
    return ConsumedEvent(
        event_id,
        refund=RefundSeen(
            r.refund_id,
            r.purchase_id,
            envelope.store_id,
            envelope.customer_id,
            r.refunded_at,
            r.total,
            sum(line.qty * line.days_per_unit for line in r.lines),
        ),
        sale=_sale(r.refund_id, r.purchase_id, None, r.lines, refund=True),
    )


def _sale(
    source_id: str,
    purchase_id: str,
    staff_id: str | None,
    lines: list[_Line],
    refund: bool = False,
) -> SaleSeen:
    """A purchase's (or a refund's, amounts negative) lines for the analysis."""
    sign = -1 if refund else 1
    return SaleSeen(
        purchase_id,
        staff_id,
        tuple(
            LineSeen(source_id, n, purchase_id, line.sku, line.category, sign * line.amount)
            for n, line in enumerate(lines)
            if line.amount is not None
        ),
        refund,
    )


def _visit_event(event_id: str, envelope: "_Envelope | EventEnvelope", v: _Visit) -> ConsumedEvent:
    if v.method is None or v.reached is None:
        return ConsumedEvent(event_id)
    return ConsumedEvent(
        event_id,
        contact=ContactSeen(
            v.visit_id,
            envelope.store_id,
            envelope.customer_id,
            v.occurred_at,
            v.method,
            v.reached,
        ),
    )


def _bought(
    lines: list[_Line],
) -> tuple[tuple[str, ...], tuple[str | None, ...], tuple[int, ...]]:
    """The purchase's lines as PurchaseSeen keeps them: skus, categories, boxes."""
    if len(lines) == 1:  # most purchases: one product
        line = lines[0]
        if line.sku is not None:
            return (line.sku,), (line.category,), (line.qty,)
    skus: list[str] = []
    categories: list[str | None] = []
    quantities: list[int] = []
    for line in lines:
        if line.sku is not None:
            skus.append(line.sku)
            categories.append(line.category)
            quantities.append(line.qty)
    return tuple(skus), tuple(categories), tuple(quantities)


def _scheduled(envelope: "_Envelope | EventEnvelope", s: _Scheduled) -> ConsumedEvent:
    return ConsumedEvent(
        str(envelope.event_id),
        scheduled=Scheduled(
            s.event_id, envelope.store_id, s.starts_at, s.title, envelope.occurred_at or _NO_TIME
        ),
    )


def _cancelled(envelope: "_Envelope | EventEnvelope", c: _Cancelled) -> ConsumedEvent:
    return ConsumedEvent(
        str(envelope.event_id),
        cancelled=Cancelled(
            c.event_id, envelope.store_id, c.cancelled_at or envelope.occurred_at or _NO_TIME
        ),
    )


def _link(customer_id: str, store_id: str, file: _File | None) -> Link | None:
    if file is None:
        return None
    return (customer_id, store_id, file.referrer_id, file.uses_competitor_products, file.version)


def _district(customer_id: str, store_id: str, file: _File | None) -> DistrictSeen | None:
    if file is None:
        return None
    return DistrictSeen(customer_id, store_id, file.district, file.version)


def _link_as_before(envelope: EventEnvelope, payload: dict[str, object]) -> Link | None:
    file = payload.get("file")
    if file is None:  # a registration published before the file was carried
        return None
    return _link(
        envelope.customer_id, envelope.store_id, msgspec.convert(file, _File, strict=False)
    )


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
                p = msgspec.convert(payload, _Purchase, strict=False)
            except msgspec.ValidationError:
                return ConsumedEvent(event_id, purchase=purchase)
            return ConsumedEvent(
                event_id,
                purchase=purchase,
                sale=_sale(p.purchase_id, p.purchase_id, p.staff_id, p.lines),
            )
        if envelope.type == CUSTOMER_REGISTERED:
            timezone = payload.get("timezone", DEFAULT_TIMEZONE)
            if not isinstance(timezone, str):
                raise TypeError(f"timezone is {type(timezone).__name__}, not text")
            return ConsumedEvent(
                event_id,
                prospect=(envelope.customer_id, envelope.store_id, timezone),
                link=_link_as_before(envelope, payload),
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
            return _refund_event(
                event_id, envelope, msgspec.convert(payload, _Refund, strict=False)
            )
        if envelope.type == EVENT_SCHEDULED:
            return _scheduled(envelope, msgspec.convert(payload, _Scheduled, strict=False))
        if envelope.type == EVENT_CANCELLED:
            return _cancelled(envelope, msgspec.convert(payload, _Cancelled, strict=False))
        if envelope.type == EVENT_ATTENDED:
            a = msgspec.convert(payload, _Attended, strict=False)
            return _signal_event(event_id, envelope, ATTENDED, a.event_id, a.attended_at)
        if envelope.type == EVENT_GUEST_BROUGHT:
            g = msgspec.convert(payload, _GuestBrought, strict=False)
            return _signal_event(event_id, envelope, GUEST_BROUGHT, g.event_id, g.brought_at)
        if envelope.type == VISIT_RECORDED:
            # Claimed whatever it holds, as before scoring read visits: the customer service
            # is the one to refuse a visit it cannot apply.
            try:
                v = msgspec.convert(payload, _Visit, strict=False)
            except msgspec.ValidationError:
                return ConsumedEvent(event_id)
            return _visit_event(event_id, envelope, v)
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        raise ValueError(f"{envelope.type} {event_id}: {exc!r}") from exc
    return ConsumedEvent(event_id)
