"""``score.changed``: published when a customer's tier changes, theirs or pushed by others."""

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.envelope import EventEnvelope, Topics
from crm_libs.events.outbox import enqueue_many

SCORE_CHANGED = "score.changed"


@dataclass(frozen=True)
class TierChange:
    customer_id: str
    store_id: str
    previous_tier: str | None
    value_tier: str
    version: int
    net_spend_365d: Decimal


async def scores_changed(session: AsyncSession, *, changes: list[TierChange]) -> None:
    await enqueue_many(
        session,
        topic=Topics.SCORES,
        events=[
            EventEnvelope(
                type=SCORE_CHANGED,
                store_id=c.store_id,
                customer_id=c.customer_id,
                payload={
                    "value_tier": c.value_tier,
                    "previous_tier": c.previous_tier,
                    "version": c.version,
                    "net_spend_365d": f"{c.net_spend_365d:.2f}",
                },
            )
            for c in changes
        ],
    )
