"""``purchase.recorded``: what scoring and engagement need to know about a sale."""

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.envelope import EventEnvelope, Topics
from crm_libs.events.outbox import enqueue
from customer_service.products.models import Product
from customer_service.purchases.models import Purchase, PurchaseLine

PURCHASE_RECORDED = "purchase.recorded"


def purchase_recorded(
    session: AsyncSession,
    *,
    purchase: Purchase,
    lines: list[PurchaseLine],
    products: dict[str, Product],
    timezone: str,
) -> None:
    local: datetime = purchase.purchased_at.astimezone(ZoneInfo(timezone))
    enqueue(
        session,
        topic=Topics.PURCHASES,
        event=EventEnvelope(
            type=PURCHASE_RECORDED,
            occurred_at=purchase.purchased_at,
            store_id=purchase.store_id,
            customer_id=purchase.customer_id,
            payload={
                "purchase_id": purchase.id,
                "purchased_at": purchase.purchased_at.isoformat(),
                "purchased_on": local.date().isoformat(),
                "timezone": timezone,
                "staff_id": purchase.staff_id,
                "member_event_id": purchase.member_event_id,
                "total": f"{purchase.total:.2f}",
                "lines": [
                    {
                        "sku": line.sku,
                        "category": products[line.sku].category,
                        "qty": line.qty,
                        "unit_price": f"{line.unit_price:.2f}",
                        "amount": f"{line.amount:.2f}",
                        "days_per_unit": products[line.sku].days_per_unit,
                    }
                    for line in lines
                ],
            },
        ),
    )
