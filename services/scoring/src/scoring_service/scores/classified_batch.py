"""A consumed batch's classification: after its purchases are ranked and its merges applied,
its signals and file links are stored and everyone they touch is classified in one statement.

Who is classified, and the cause their changes are recorded with (the first that applies):
a buyer (``purchase``), a merge's survivor (``merged``), a customer with a new member-event
signal (``event_attended``, ``guest_brought``), a referrer whose referred files changed
(``referral``; a buyer's referrer is added by the classification itself), a file whose link
changed (``file_changed``).
"""

from collections.abc import Sequence
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.driver import driver_connection
from scoring_service.scores import classify, history, signals
from scoring_service.scores.aggregates import PurchaseSeen
from scoring_service.scores.consumed import Merged
from scoring_service.scores.service import window_start


def stores_of(*, signals_seen: Sequence[signals.Signal], links: Sequence[signals.Link]) -> set[str]:
    """The stores the batch's signals and links classify customers of (to lock up front)."""
    return {s[3] for s in signals_seen} | {link[1] for link in links}


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
    await signals.move_signals(db, [(c, s) for c, s, _ in merged])
    causes: dict[str, str] = await signals.store_links(db, links)
    causes.update(await signals.store_signals(db, signals_seen))
    causes.update({survivor: history.MERGED for _, survivor, _ in merged})
    causes.update({p.customer_id: history.PURCHASE for p in purchases})
    if not causes:
        return []
    now, _ = window_start(as_of)
    return await classify.classify_customers(
        db, customer_ids=causes, now=now, cause=history.RECOMPUTE, causes=causes
    )
