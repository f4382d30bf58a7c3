"""Event handlers: what engagement does with each batch it consumes."""

from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.envelope import EventEnvelope
from engagement_service.followups import service

PURCHASE_RECORDED = "purchase.recorded"


async def handle_purchases(session: AsyncSession, batch: list[EventEnvelope]) -> None:
    purchases = [
        service.PurchaseSeen.from_payload(
            store_id=e.store_id, customer_id=e.customer_id, payload=e.payload
        )
        for e in batch
        if e.type == PURCHASE_RECORDED
    ]
    await service.start_plans(session, purchases=purchases)
