"""A consumed batch's refunds: kept, applied to their purchases' facts, and everything that
follows from the facts recomputed for the customers they touch (scores/refund_facts.py says
what a refund changes and why).

The pyramid moves through the batch's own statement (service.rescore_refunded: a refund can
lower its customer's tier and lift others past a threshold), then the classifications follow
(ladder, loyalty, lifecycle, RFM). Every change is recorded with the cause ``refund``. A refund
whose purchase is not stored yet changes nothing now: it waits for it.
"""

from collections.abc import Sequence
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.driver import driver_connection
from scoring_service.scores import classify, events, history, refund_facts, service
from scoring_service.scores.refund_facts import RefundSeen


async def apply_refunds(
    session: AsyncSession, *, refunds: Sequence[RefundSeen], as_of: date | None
) -> list[events.TierChange]:
    """Keep the refunds, apply those whose purchase is stored; the tiers that moved.

    Run last in a batch's transaction: the cause it declares holds for the rest of it."""
    if not refunds:
        return []
    db = await driver_connection(session)
    await refund_facts.store_refunds(db, refunds)
    await service.lock_stores(session, store_ids={r.store_id for r in refunds})
    refunded = await refund_facts.apply_due(db, [r.purchase_id for r in refunds])
    if not refunded:
        return []
    # A merge may have moved a purchase to a survivor of another store: lock it too.
    await service.lock_stores(session, store_ids={s for _, s, _ in refunded})
    await history.declare_cause(db, cause=history.REFUND)
    changes = await service.rescore_refunded(db, customers=refunded, as_of=as_of)
    now, _ = service.window_start(as_of)
    await classify.classify_customers(
        db, customer_ids=[c for c, _, _ in refunded], now=now, cause=history.REFUND
    )
    return changes
