"""Events this service publishes about customer files (ids only: no personal data on the wire)."""

from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.envelope import EventEnvelope, Topics
from crm_libs.events.outbox import enqueue

CUSTOMER_REGISTERED = "customer.registered"


def customer_registered(
    session: AsyncSession, *, customer_id: str, store_id: str, timezone: str
) -> None:
    enqueue(
        session,
        topic=Topics.CUSTOMERS,
        event=EventEnvelope(
            type=CUSTOMER_REGISTERED,
            store_id=store_id,
            customer_id=customer_id,
            payload={"timezone": timezone},
        ),
    )
