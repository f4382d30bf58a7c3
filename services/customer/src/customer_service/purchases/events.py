"""``purchase.recorded`` and ``purchase.refunded``: what scoring and engagement need to know
about a sale, and about goods brought back."""

from __future__ import annotations

from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from crm_libs.events.envelope import EventEnvelope
from crm_libs.events.event_types import PURCHASE_RECORDED, PURCHASE_REFUNDED

if TYPE_CHECKING:
    from customer_service.purchases.refunds import Refund
    from customer_service.purchases.service import Sale


def purchase_recorded(sale: Sale) -> EventEnvelope:
    """The event of a sale, for the outbox row written with it (topic ``Topics.PURCHASES``)."""
    local = sale.purchased_at.astimezone(ZoneInfo(sale.timezone))
    return EventEnvelope(
        type=PURCHASE_RECORDED,
        occurred_at=sale.purchased_at,
        store_id=sale.store_id,
        customer_id=sale.customer_id,
        payload={
            "purchase_id": sale.id,
            "purchased_at": sale.purchased_at.isoformat(),
            "purchased_on": local.date().isoformat(),
            "timezone": sale.timezone,
            "staff_id": sale.staff_id,
            "member_event_id": sale.member_event_id,
            "total": f"{sale.total:.2f}",
            "lines": [
                {
                    "sku": line.sku,
                    "category": line.category,
                    "qty": line.qty,
                    "unit_price": f"{line.unit_price:.2f}",
                    "amount": f"{line.amount:.2f}",
                    "days_per_unit": line.days_per_unit,
                }
                for line in sale.lines
            ],
        },
    )


def purchase_refunded(refund: Refund) -> EventEnvelope:
    """The event of a refund (topic ``Topics.PURCHASES``, keyed by customer like the sale, so it
    follows it): what scoring needs to take the spend and the supply days back."""
    zone = ZoneInfo(refund.timezone)
    return EventEnvelope(
        type=PURCHASE_REFUNDED,
        occurred_at=refund.refunded_at,
        store_id=refund.store_id,
        customer_id=refund.customer_id,
        payload={
            "purchase_id": refund.purchase_id,
            "refund_id": refund.id,
            "reason": refund.reason,
            "refunded_at": refund.refunded_at.isoformat(),
            "refunded_on": refund.refunded_at.astimezone(zone).date().isoformat(),
            "purchased_at": refund.purchased_at.isoformat(),
            "purchased_on": refund.purchased_at.astimezone(zone).date().isoformat(),
            "timezone": refund.timezone,
            "total": f"{refund.total:.2f}",
            "lines": [
                {
                    "sku": line.sku,
                    "category": line.category,
                    "qty": line.qty,
                    "unit_price": f"{line.unit_price:.2f}",
                    "amount": f"{line.amount:.2f}",
                    "days_per_unit": line.days_per_unit,
                }
                for line in refund.lines
            ],
        },
    )
