"""Event handlers: what scoring does with each batch it consumes."""

import logging
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.envelope import EventEnvelope
from scoring_service.scores import service
from scoring_service.scores.aggregates import PurchaseSeen

log = logging.getLogger(__name__)

PURCHASE_RECORDED = "purchase.recorded"
CUSTOMER_REGISTERED = "customer.registered"


def make_batch_handler(*, as_of: date | None):
    async def handle(session: AsyncSession, batch: list[EventEnvelope]) -> None:
        purchases = [
            PurchaseSeen.from_payload(
                store_id=e.store_id, customer_id=e.customer_id, payload=e.payload
            )
            for e in batch
            if e.type == PURCHASE_RECORDED
        ]
        prospects = [
            (e.customer_id, e.store_id, e.payload.get("timezone", "Asia/Shanghai"))
            for e in batch
            if e.type == CUSTOMER_REGISTERED
        ]
        changes = await service.score_batch(
            session, prospects=prospects, purchases=purchases, as_of=as_of
        )
        if changes:
            log.info(
                "tiers changed",
                extra={"fields": {"count": len(changes), "purchases": len(purchases)}},
            )

    return handle
