"""What engagement does with each batch it consumes from ``crm.customers.v1`` and
``crm.purchases.v1``.

The two topics have no order between them, so within a batch the files' changes go first: a
purchase then finds its file as new as this batch knows it (its owner, a merge, an archive).
Refunds go after the purchases: one customer's sale and its refund come in that order on one
partition, so a refund in the same batch as its sale finds the plan the sale started.
"""

from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.envelope import EventEnvelope
from engagement_service.customers import service as customers
from engagement_service.customers.events import CUSTOMER_EVENTS, CustomerChangeSeen
from engagement_service.followups import service as followups
from engagement_service.followups.file_changes import follow_file_changes
from engagement_service.followups.refunds import RefundSeen, close_refunded_plans

PURCHASE_RECORDED = "purchase.recorded"
PURCHASE_REFUNDED = "purchase.refunded"


async def handle_events(session: AsyncSession, batch: list[EventEnvelope]) -> None:
    changes = [CustomerChangeSeen.from_envelope(e) for e in batch if e.type in CUSTOMER_EVENTS]
    purchases = [
        followups.PurchaseSeen.from_payload(
            store_id=e.store_id, customer_id=e.customer_id, payload=e.payload
        )
        for e in batch
        if e.type == PURCHASE_RECORDED
    ]
    refunds = [
        RefundSeen.from_payload(store_id=e.store_id, payload=e.payload)
        for e in batch
        if e.type == PURCHASE_REFUNDED
    ]
    await customers.lock_stores(
        session,
        store_ids=[
            *(c.store_id for c in changes),
            *(p.store_id for p in purchases),
            *(r.store_id for r in refunds),
        ],
    )
    await follow_file_changes(
        session, changes=await customers.apply_changes(session, changes=changes)
    )
    files = await customers.files_of(session, customer_ids={p.customer_id for p in purchases})
    await followups.start_plans(session, purchases=purchases, files=files)
    await close_refunded_plans(session, refunds=refunds)
