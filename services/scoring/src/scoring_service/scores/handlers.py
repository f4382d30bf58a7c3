"""Event handlers: what scoring does with each batch it consumes."""

import logging
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.consumer import prepared
from crm_libs.events.driver import driver_connection
from scoring_service.analysis.seen import store_seen
from scoring_service.scores import (
    classified_batch,
    expected_dates,
    history,
    merges,
    refunds,
    service,
)
from scoring_service.scores.consumed import ConsumedEvent
from scoring_service.scores.member_events import store_member_events

log = logging.getLogger(__name__)


def claimed_by_its_fact(event: ConsumedEvent) -> bool:
    """Events applied once by keys of their own: the consumer writes no claim for them
    (crm_libs.events.consumer's ``idempotent``).

    A purchase by its fact's key (``purchase_fact.purchase_id``). A registration by its file:
    the prospect's row is inserted only where the file has none and was not merged away
    (service.py), its link and district only above the version held (signals.py,
    analysis/seen.py), so a registration delivered again changes nothing; a claim row per
    registration was one more row and index entry per imported file, for nothing."""
    return event.purchase is not None or event.prospect is not None


def prepare_batch(batch: list[ConsumedEvent]) -> service.PreparedPurchases:
    """The batch's purchases made ready for its statements, before its transaction."""
    return service.PreparedPurchases.of([e.purchase for e in batch if e.purchase is not None])


def make_batch_handler(*, as_of: date | None):
    async def handle(session: AsyncSession, batch: list[ConsumedEvent]) -> None:
        ready: service.PreparedPurchases | None = prepared(session)
        if ready is not None:
            purchases = list(ready.purchases)
        else:
            purchases = [e.purchase for e in batch if e.purchase is not None]
        prospects = [e.prospect for e in batch if e.prospect is not None]
        merged = [e.merge for e in batch if e.merge is not None]
        signals_seen = [e.signal for e in batch if e.signal is not None]
        links = [e.link for e in batch if e.link is not None]
        refunded = [e.refund for e in batch if e.refund is not None]
        scheduled = [e.scheduled for e in batch if e.scheduled is not None]
        cancelled = [e.cancelled for e in batch if e.cancelled is not None]
        event_stores = {e.store_id for e in scheduled} | {c.store_id for c in cancelled}
        if event_stores:  # no store's lock: the member event's own row
            await store_member_events(
                await driver_connection(session), scheduled=scheduled, cancelled=cancelled
            )
        sales = [e.sale for e in batch if e.sale is not None]
        districts = [e.district for e in batch if e.district is not None]
        contacts = [e.contact for e in batch if e.contact is not None]
        if sales or districts or contacts:  # the analysis's own rows, keyed by their events
            await store_seen(
                await driver_connection(session),
                sales=sales,
                districts=districts,
                contacts=contacts,
            )
        # A merged-away file's purchase goes to its survivor; this batch's merges come last, so
        # they also move what the batch itself stored for their files.
        purchases = await merges.rekeyed(session, purchases)
        if ready is not None and not ready.describes(purchases):
            ready = None  # re-keyed: made ready for the files they were bought for
        if merged or signals_seen or links or refunded or event_stores:
            # Every store of the batch at once, in key order (as score_batch would): taking the
            # merges' (or signals', links') stores after the batch's could deadlock with a
            # member doing the reverse.
            await service.lock_stores(
                session,
                store_ids={s for _, _, s in merged}
                | {s for _, s, _ in prospects}
                | {p.store_id for p in purchases}
                | {r.store_id for r in refunded}
                | classified_batch.stores_of(signals_seen=signals_seen, links=links)
                | event_stores,
            )
        if event_stores:
            # The expected dates the events moved (an event now before a run-out, or one
            # cancelled), before the batch's purchases: what those publish carries them.
            await expected_dates.publish_moved_dates(
                await driver_connection(session),
                now=service.window_start(as_of)[0],
                cause=history.MEMBER_EVENT,
                store_ids=sorted(event_stores),
                events_changed=True,
            )
        if merged:
            changes = await service.score_batch(
                session, prospects=prospects, purchases=purchases, as_of=as_of, prepared=ready
            )
            # What the merges move (the survivors' tiers, others pushed) is the merges' doing.
            await history.declare_cause(session, cause=history.MERGED)
            changes += await merges.apply_merges(session, merges=merged, as_of=as_of)
            await classified_batch.classify_batch(
                session,
                purchases=purchases,
                merged=merged,
                signals_seen=signals_seen,
                links=links,
                as_of=as_of,
            )
            moved = len(changes)
        else:
            # Signals and links first: the statement that adds the batch classifies its buyers.
            causes = await classified_batch.store_signals_and_links(
                session, merged=merged, signals_seen=signals_seen, links=links
            )
            added = await service.score_and_classify_batch(
                session, prospects=prospects, purchases=purchases, as_of=as_of, prepared=ready
            )
            await classified_batch.classify_rest(
                session, purchases=purchases, causes=causes, added=added, as_of=as_of
            )
            moved = added.moved + len(added.changes)
        # Last: the batch's purchases are stored (a refund of one of them applies at once), and
        # the cause it declares holds for the rest of the transaction.
        moved += len(await refunds.apply_refunds(session, refunds=refunded, as_of=as_of))
        if moved:
            log.info(
                "tiers changed", extra={"fields": {"count": moved, "purchases": len(purchases)}}
            )

    return handle
