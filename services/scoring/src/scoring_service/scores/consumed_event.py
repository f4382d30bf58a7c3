"""One consumed event as scoring keeps it (:class:`ConsumedEvent`), and what builds one from a
decoded payload (scores/consumed.py decodes)."""

from datetime import UTC, datetime

import msgspec

from crm_libs.events.envelope import EventEnvelope
from scoring_service.analysis.seen import ContactSeen, DistrictSeen, LineSeen, SaleSeen
from scoring_service.scores.aggregates import PurchaseSeen
from scoring_service.scores.consumed_wire import (
    WireCancelled,
    WireEnvelope,
    WireFile,
    WireLine,
    WireRefund,
    WireScheduled,
    WireVisit,
)
from scoring_service.scores.member_events import Cancelled, Scheduled
from scoring_service.scores.refund_facts import RefundSeen
from scoring_service.scores.signals import Link, Signal

# The time of an announcement whose envelope gives none: older than any that does.
_NO_TIME = datetime(1970, 1, 1, tzinfo=UTC)


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


def signal_event(
    event_id: str,
    envelope: "WireEnvelope | EventEnvelope",
    kind: str,
    member_event_id: str,
    at: datetime,
) -> ConsumedEvent:
    """A member-event signal of the envelope's customer, keyed by the member event."""
    return ConsumedEvent(
        event_id,
        signal=(kind, member_event_id, envelope.customer_id, envelope.store_id, at),
    )


def refund_event(
    event_id: str, envelope: "WireEnvelope | EventEnvelope", r: WireRefund
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
        sale=sale_of(r.refund_id, r.purchase_id, None, r.lines, refund=True),
    )


def sale_of(
    source_id: str,
    purchase_id: str,
    staff_id: str | None,
    lines: list[WireLine],
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


def visit_event(
    event_id: str, envelope: "WireEnvelope | EventEnvelope", v: WireVisit
) -> ConsumedEvent:
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


def bought(
    lines: list[WireLine],
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


def scheduled_event(envelope: "WireEnvelope | EventEnvelope", s: WireScheduled) -> ConsumedEvent:
    return ConsumedEvent(
        str(envelope.event_id),
        scheduled=Scheduled(
            s.event_id, envelope.store_id, s.starts_at, s.title, envelope.occurred_at or _NO_TIME
        ),
    )


def cancelled_event(envelope: "WireEnvelope | EventEnvelope", c: WireCancelled) -> ConsumedEvent:
    return ConsumedEvent(
        str(envelope.event_id),
        cancelled=Cancelled(
            c.event_id, envelope.store_id, c.cancelled_at or envelope.occurred_at or _NO_TIME
        ),
    )


def link_of(customer_id: str, store_id: str, file: WireFile | None) -> Link | None:
    if file is None:
        return None
    return (customer_id, store_id, file.referrer_id, file.uses_competitor_products, file.version)


def district_of(customer_id: str, store_id: str, file: WireFile | None) -> DistrictSeen | None:
    if file is None:
        return None
    return DistrictSeen(customer_id, store_id, file.district, file.version)


# A registration is its file's first event: no event of the file is older, so none can come
# that a row of its version would have to hold back (the versions compared in signals.py and
# analysis/seen.py), and any row already there is its own or a later event's, which it would
# not change. A link with no referrer and no competitors' products reads exactly as no row
# (classify.py and batch_add_sql.py look for a referrer or ``uses_competitor``, consumption.py
# for a referrer: none either way), and a district of None as no row (the analysis's region is
# the LEFT JOIN's NULL either way): such a registration's link and district are not stored.
# An imported sheet's plain registrations write neither row. Any later event of the file writes
# its own as before, a plain one included (it must clear what an earlier one said).


def registered_link(customer_id: str, store_id: str, file: WireFile | None) -> Link | None:
    """A registration's link, if it says something (see above)."""
    if file is None or (file.referrer_id is None and not file.uses_competitor_products):
        return None
    return link_of(customer_id, store_id, file)


def registered_district(
    customer_id: str, store_id: str, file: WireFile | None
) -> DistrictSeen | None:
    """A registration's district, if it names one (see above)."""
    if file is None or file.district is None:
        return None
    return DistrictSeen(customer_id, store_id, file.district, file.version)
