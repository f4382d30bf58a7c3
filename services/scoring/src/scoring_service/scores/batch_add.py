"""A batch added to the aggregates and ranked in one statement, and for the consumer's batches
classified by the same statement: each customer's row written once, with one ``score.changed``.

The caller holds the batch's stores' locks (scores/store_locks.py).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from scoring_service.scores import classify, events, expected_dates, history, refund_facts
from scoring_service.scores.batch_add_sql import ADD_BATCH_SQL, ADD_CLASSIFY_SQL
from scoring_service.scores.rebuild import rebuild_aggregates
from scoring_service.scores.rerank import rerank
from scoring_service.scores.thresholds import DEFAULT_THRESHOLDS
from scoring_service.scores.tiers import bounds_parameters


@dataclass
class Added:
    """What a classifying add leaves to do (scores/classified_batch.py)."""

    moved: int  # tiers that moved
    changes: list[events.TierChange] = field(default_factory=list)  # staged apart (rare)
    classified: set[str] = field(default_factory=set)  # the batch's customers it classified
    unclassified: list[str] = field(default_factory=list)  # rebuilt after it, or missed
    referrers: list[str] = field(default_factory=list)  # of the batch's customers


async def add_and_rank(
    db: asyncpg.Connection,
    folded: list[list[Any]],
    stores: list[str],
    *,
    now: datetime,
    since: datetime,
    refunded: Sequence[str],
) -> list[events.TierChange]:
    """Add the folded batch (purchases.PreparedPurchases.folded) and rank it; the tiers that
    moved, each staged as a score.changed."""
    rows = await db.fetch(ADD_BATCH_SQL, *folded, since, now, *bounds_parameters(stores))
    changes: list[events.TierChange] = []
    late: list[str] = []
    missed: list[str] = []
    for row in rows:
        if row[0] == "moved":
            changes.append(events.TierChange(*row[1:]))
        else:
            (late if row[0] == "late" else missed).append(row[1])
    changes += await _after_add(
        db,
        stores,
        now=now,
        since=since,
        late=late,
        missed=missed,
        refunded=refunded,
        dated=folded[0],  # this statement publishes no dates
    )
    return changes


async def add_rank_and_classify(
    db: asyncpg.Connection,
    folded: list[list[Any]],
    stores: list[str],
    *,
    now: datetime,
    since: datetime,
    refunded: Sequence[str],
) -> Added:
    """:func:`add_and_rank` with the classification of the batch's customers in the same
    statement; who is left to classify comes back."""
    rows = await db.fetch(
        ADD_CLASSIFY_SQL,
        *folded,
        since,
        now,
        *bounds_parameters(stores),
        *classify.threshold_params(DEFAULT_THRESHOLDS),
        list(refunded),
    )
    added = Added(moved=0)
    late: list[str] = []
    missed: list[str] = []
    for kind, value, *_ in rows:
        if kind == "moved":
            added.moved = int(value)
        elif kind == "referrer":
            added.referrers.append(value)
        else:
            (late if kind == "late" else missed).append(value)
    added.changes = await _after_add(
        db,
        stores,
        now=now,
        since=since,
        late=late,
        missed=missed,
        refunded=refunded,
        dated=[*late, *missed, *refunded],  # the rest were dated by the statement
    )
    added.unclassified = list(dict.fromkeys([*late, *missed, *refunded]))
    added.classified = set(folded[0]).difference(added.unclassified)
    return added


async def _after_add(
    db: asyncpg.Connection,
    stores: list[str],
    *,
    now: datetime,
    since: datetime,
    late: list[str],
    missed: list[str],
    refunded: Sequence[str],
    dated: Sequence[str],
) -> list[events.TierChange]:
    """The rare rest of a batch: back-dated, missed and refunded customers' aggregates rebuilt
    from their facts, the moved dates of ``dated`` published, the stores ranked whole after a
    missed row, the wholly refunded made prospects again."""
    changes: list[events.TierChange] = []
    if late or missed or refunded:  # rare (a back-dated purchase): one more statement
        await rebuild_aggregates(
            db, customer_ids=list(dict.fromkeys([*late, *missed, *refunded])), since=since, now=now
        )
    # Before the re-rank and the classification: what they publish carries the dates stored.
    await expected_dates.publish_moved_dates(
        db, now=now, cause=history.PURCHASE, customer_ids=dated
    )
    if missed:
        changes += await rerank(db, stores, now=now)
    if refunded:
        changes += await refund_facts.unbought_to_prospects(db, refunded, now=now)
    return changes
