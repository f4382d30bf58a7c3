"""A consumed batch's classification: its signals and file links stored, and everyone they
touch classified in one statement.

Who is classified, and the cause their changes are recorded with (the first that applies):
a buyer (``purchase``), a merge's survivor (``merged``), a customer with a new member-event
signal (``event_attended``, ``guest_brought``), a referrer whose referred files changed
(``referral``; a buyer's referrer is added by the classification itself), a file whose link
changed (``file_changed``).

A batch without merges has its buyers classified by the statement that adds it
(:func:`~scoring_service.scores.service.score_and_classify_batch`), its signals and links
stored first so that statement reads them; what is left (the others touched, the buyers it
could not classify, the buyers' referrers) is classified after it (:func:`classify_rest`). A
batch with merges is added, merged, then classified whole (:func:`classify_batch`): a merge
moves purchases and signals between the files classified.
"""

from collections.abc import Sequence
from datetime import date

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.driver import driver_connection
from scoring_service.scores import classify, history, signals
from scoring_service.scores.aggregates import PurchaseSeen
from scoring_service.scores.batch_add import Added
from scoring_service.scores.consumed import Merged
from scoring_service.scores.tiers import window_start


def stores_of(*, signals_seen: Sequence[signals.Signal], links: Sequence[signals.Link]) -> set[str]:
    """The stores the batch's signals and links classify customers of (to lock up front)."""
    return {s[3] for s in signals_seen} | {link[1] for link in links}


async def store_signals_and_links(
    session: AsyncSession,
    *,
    merged: Sequence[Merged],
    signals_seen: Sequence[signals.Signal],
    links: Sequence[signals.Link],
) -> dict[str, str]:
    """Move the merged files' signals, store the batch's signals and links; the customers they
    touch, each with the cause of their classification."""
    db = await driver_connection(session)
    return await _store(db, merged=merged, signals_seen=signals_seen, links=links)


async def _store(
    db: asyncpg.Connection,
    *,
    merged: Sequence[Merged],
    signals_seen: Sequence[signals.Signal],
    links: Sequence[signals.Link],
) -> dict[str, str]:
    await signals.move_signals(db, [(c, s) for c, s, _ in merged])
    causes: dict[str, str] = await signals.store_links(db, links)
    causes.update(await signals.store_signals(db, signals_seen))
    return causes


async def classify_batch(
    session: AsyncSession,
    *,
    purchases: Sequence[PurchaseSeen],
    merged: Sequence[Merged],
    signals_seen: Sequence[signals.Signal],
    links: Sequence[signals.Link],
    as_of: date | None,
) -> list[classify.Classified]:
    """Store the batch's signals and links, then classify everyone the batch touched.

    The caller holds the locks of every store involved (service.lock_stores)."""
    db = await driver_connection(session)
    causes = await _store(db, merged=merged, signals_seen=signals_seen, links=links)
    causes.update({survivor: history.MERGED for _, survivor, _ in merged})
    causes.update({p.customer_id: history.PURCHASE for p in purchases})
    return await _classify(db, causes, as_of=as_of)


async def classify_rest(
    session: AsyncSession,
    *,
    purchases: Sequence[PurchaseSeen],
    causes: dict[str, str],
    added: Added,
    as_of: date | None,
) -> list[classify.Classified]:
    """Classify what the batch's add did not (``causes``: of its stored signals and links).

    The caller holds the locks of every store involved (service.lock_stores)."""
    rest = {c: cause for c, cause in causes.items() if c not in added.classified}
    rest.update(dict.fromkeys(added.unclassified, history.PURCHASE))
    # Purchases stored before (a replay) are in no add; a refund's customer may be another's.
    rest.update(
        (p.customer_id, history.PURCHASE)
        for p in purchases
        if p.customer_id not in added.classified
    )
    for referrer in added.referrers:  # their referred buyers bought
        rest.setdefault(referrer, history.REFERRAL)
    return await _classify(await driver_connection(session), rest, as_of=as_of)


async def _classify(
    db: asyncpg.Connection, causes: dict[str, str], *, as_of: date | None
) -> list[classify.Classified]:
    if not causes:
        return []
    now, _ = window_start(as_of)
    return await classify.classify_customers(
        db, customer_ids=causes, now=now, cause=history.RECOMPUTE, causes=causes
    )
