"""What engagement does with each batch it consumes from ``crm.customers.v1``,
``crm.purchases.v1`` and ``crm.scores.v1``.

The two topics have no order between them, so within a batch the files' changes go first: a
purchase then finds its file as new as this batch knows it (its owner, a merge, an archive).
Refunds go after the purchases: one customer's sale and its refund come in that order on one
partition, so a refund in the same batch as its sale finds the plan the sale started. Scores go
last: a refund's reason is then known to the recovery its customer's stop asks for, and a file
registered in the batch has its owner for the refill and routine tasks.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.envelope import EventEnvelope
from crm_libs.events.event_types import PURCHASE_RECORDED, PURCHASE_REFUNDED
from engagement_service.campaigns.seen import follow_merges, record_purchases
from engagement_service.care.files import care_files
from engagement_service.care.recovery import open_recoveries
from engagement_service.care.refill import plan_refills
from engagement_service.care.routine import replan_moved
from engagement_service.care.stop_reasons import Signal, record_stop_signals
from engagement_service.config import Settings
from engagement_service.consumed import Consumed
from engagement_service.customers import service as customers
from engagement_service.customers.events import CUSTOMER_EVENTS, CustomerChangeSeen
from engagement_service.followups import service as followups
from engagement_service.followups.file_changes import follow_file_changes
from engagement_service.followups.refunds import RefundSeen, close_refunded_plans
from engagement_service.scores.events import ScoreChangeSeen
from engagement_service.scores.service import apply_score_changes

SCORE_CHANGED = "score.changed"

_HORIZON_DAYS: int = Settings.model_fields["routine_horizon_days"].default
_DEFAULT_TIMEZONE: str = Settings.model_fields["default_timezone"].default


async def handle_events(
    session: AsyncSession,
    batch: Sequence[Consumed],
    *,
    horizon_days: int = _HORIZON_DAYS,
    default_timezone: str = _DEFAULT_TIMEZONE,
) -> None:
    # A file's event comes decoded already from the consumer (engagement_service/consumed.py),
    # or as an envelope (one msgspec refused, or a caller's own).
    changes: list[CustomerChangeSeen] = []
    envelopes: list[EventEnvelope] = []
    for e in batch:
        if isinstance(e, CustomerChangeSeen):
            changes.append(e)
        elif e.type in CUSTOMER_EVENTS:
            changes.append(CustomerChangeSeen.from_envelope(e))
        else:
            envelopes.append(e)
    purchases = [
        followups.PurchaseSeen.from_payload(
            store_id=e.store_id, customer_id=e.customer_id, payload=e.payload
        )
        for e in envelopes
        if e.type == PURCHASE_RECORDED
    ]
    refunds = [
        RefundSeen.from_payload(store_id=e.store_id, payload=e.payload)
        for e in envelopes
        if e.type == PURCHASE_REFUNDED
    ]
    signals = [Signal.from_refund(e) for e in envelopes if e.type == PURCHASE_REFUNDED]
    scores = [ScoreChangeSeen.from_envelope(e) for e in envelopes if e.type == SCORE_CHANGED]
    await customers.lock_stores(
        session,
        store_ids=[
            *(c.store_id for c in changes),
            *(p.store_id for p in purchases),
            *(r.store_id for r in refunds),
            *(s.store_id for s in scores),
        ],
    )
    file_changes = await customers.apply_changes(session, changes=changes)
    await follow_file_changes(session, changes=file_changes)
    await follow_merges(session, merges=file_changes.merges)
    files = await customers.files_of(session, customer_ids={p.customer_id for p in purchases})
    await followups.start_plans(session, purchases=purchases, files=files)
    await record_purchases(session, purchases=purchases, files=files)
    await close_refunded_plans(session, refunds=refunds)
    await record_stop_signals(session, signals=signals)
    moved = await apply_score_changes(session, changes=scores)
    if moved:
        held = await care_files(
            session,
            customers={m.customer_id: m.store_id for m in moved},
            now=datetime.now(UTC),
            default_timezone=default_timezone,
        )
        await plan_refills(session, moved=moved, files=held)
        await replan_moved(session, moved=moved, files=held, horizon_days=horizon_days)
        await open_recoveries(session, moved=moved, files=held)
