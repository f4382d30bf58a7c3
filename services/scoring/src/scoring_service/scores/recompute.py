"""A store rebuilt from the facts scoring stored: ``POST /scores/recompute``.

Every column of a score is a function of the stored facts (purchases, and the signals and file
links the classifications read) and of the date, so a store can be recomputed from them at any
time and must come out exactly as the incremental path left it: aggregates from every purchase
and the trailing window's spend (:func:`service.rebuild_aggregates`, the statement the consumer
uses for a back-dated purchase), then the pyramid, then every classification of the store.

The store's lock is taken before anything of it is read and held to the end of the transaction.
A consumer stores a batch's purchase facts before it takes that lock, so a purchase arriving
meanwhile is either committed before the recompute reads the facts (and rebuilt with them) or
waits for the lock and is then added to the rebuilt aggregates: never lost, never counted twice.
"""

from dataclasses import dataclass
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.driver import driver_connection
from crm_libs.problems import NotFound
from scoring_service.scores import expected_dates, history, service
from scoring_service.scores.classify import classify_store
from scoring_service.scores.next_purchase import refresh_transitions

_CUSTOMERS_SQL = "SELECT count(*) FROM customer_score WHERE store_id = $1"


@dataclass(frozen=True, slots=True)
class Recomputed:
    """What a recompute found: the store's customers, and how many of their scores changed."""

    customers: int
    # Aggregates that differed from the facts (zero when the incremental path kept up).
    corrected: int
    # Changes published as ``score.changed``: dates moved, tiers moved, then ladders or
    # lifecycles changed (a customer whose tier and lifecycle both moved is counted in each).
    changed: int


async def recompute_store(
    session: AsyncSession, *, store_id: str, as_of: date | None = None
) -> Recomputed:
    """Rebuild every score of ``store_id`` from its stored facts; NotFound if it has none."""
    db = await driver_connection(session)
    await service.lock_stores(session, store_ids=[store_id])
    customers = await db.fetchval(_CUSTOMERS_SQL, store_id)
    if not customers:
        raise NotFound("Scoring holds no customer of this store")
    await history.declare_cause(db, cause=history.RECOMPUTE)
    now, since = service.window_start(as_of)
    corrected = await service.rebuild_aggregates(db, store_id=store_id, since=since, now=now)
    # The run-outs the rebuild moved, published before what the ranking and classifying carry.
    dated = await expected_dates.publish_moved_dates(
        db, now=now, cause=history.RECOMPUTE, store_ids=[store_id]
    )
    # The rebuild summed the trailing window too (refresh_windows would only sum it again: a
    # second pass over a million customers' purchases): the pyramid is ranked on it at once.
    moved = len(await service._rerank(db, [store_id], now=now))
    classified = await classify_store(db, store_id=store_id, now=now, cause=history.RECOMPUTE)
    await refresh_transitions(db, store_id=store_id, now=now)  # the next product's figures
    return Recomputed(customers=customers, corrected=corrected, changed=dated + moved + classified)
