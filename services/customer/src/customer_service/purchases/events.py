"""``purchase.recorded``: what scoring and engagement need to know about a sale."""

from __future__ import annotations

from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from crm_libs.events.envelope import EventEnvelope

if TYPE_CHECKING:
    from customer_service.purchases.service import Sale

PURCHASE_RECORDED = "purchase.recorded"


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
