"""Scoring: apply a consumed batch's purchases and registrations to the scores.

A batch is a fixed number of statements however large it is, sent straight to asyncpg
(:func:`~crm_libs.events.driver.driver_connection`): array parameters or one COPY each. Its
purchase facts go in first (scores/purchase_facts.py: keyed by purchase and read only for their
own customer's spend), then its stores' locks (scores/store_locks.py) for the aggregates, the
ranking and the classification, then one statement adding it to the aggregates and ranking it
(scores/batch_add.py), which for the consumer's batches classifies it too.

What else lives beside it: stores ranked whole (scores/rerank.py), aggregates rebuilt from the
facts (scores/rebuild.py).
"""

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_libs import text_lists
from crm_libs.events.consumer import first_delivery
from crm_libs.events.driver import driver_connection
from crm_libs.principal import Principal
from crm_libs.problems import NotFound
from scoring_service.scores import batch_add, events, refund_facts
from scoring_service.scores.aggregates import PurchaseSeen
from scoring_service.scores.models import FLOATING, CustomerScore
from scoring_service.scores.purchase_facts import PreparedPurchases as PreparedPurchases
from scoring_service.scores.purchase_facts import store_facts
from scoring_service.scores.rebuild import rebuild_aggregates as rebuild_aggregates
from scoring_service.scores.rerank import refresh_windows as refresh_windows
from scoring_service.scores.rerank import rerank
from scoring_service.scores.store_locks import RERANK_LOCK_SPACE as RERANK_LOCK_SPACE
from scoring_service.scores.store_locks import lock_stores as lock_stores
from scoring_service.scores.store_locks import lock_stores_on
from scoring_service.scores.tiers import PROSPECT
from scoring_service.scores.tiers import window_start as window_start

# Ranking stores whole, by the name the recompute and the ranking's tests know.
_rerank = rerank

# A registration that arrives after a purchase (another topic, no ordering) changes nothing.
# A new file is a prospect, classified as the classification finds a file with no purchase
# (floating: scores/classify.py), so a plain registration needs no classification; it stages
# no score.changed: a file without a score is a prospect to crm.scores.v1's readers
# (deploy/README.md), and a score.changed per imported file cost scoring, the broker and the
# customer service's read copy more than the file's own row.
# A registration has no claim row (handlers.claimed_by_its_fact): delivered again, it must not
# bring back the row of a file merged away since (merges.py removed it).
# ``{columns}``: the three columns' arrays (see _text_columns).
_INSERT_PROSPECTS_SQL = f"""
    INSERT INTO customer_score (customer_id, store_id, timezone, purchase_count,
                                net_spend_365d, value_tier, loyalty, version, computed_at)
    SELECT c, s, z, 0, 0, '{PROSPECT}', '{FLOATING}', 1, $4
    FROM unnest({{columns}}) AS t(c, s, z)
    WHERE NOT EXISTS (SELECT FROM merged_customer AS m WHERE m.customer_id = t.c)
    ON CONFLICT (customer_id) DO NOTHING
"""  # noqa: S608

# A column of text sent as one text, the server splitting it (crm_libs.text_lists): asyncpg's
# encoding of a text[] was most of this process's time on a batch of prospects (a third of a
# microsecond per value, three values a file). A batch the split would not give back (a value
# holding the separator, a single empty value) goes as arrays.
_JOINED_COLUMNS = ", ".join(text_lists.split_sql(f"${n}") for n in (1, 2, 3))
_INSERT_PROSPECTS_JOINED_SQL = _INSERT_PROSPECTS_SQL.format(columns=_JOINED_COLUMNS)
_INSERT_PROSPECTS_ARRAYS_SQL = _INSERT_PROSPECTS_SQL.format(
    columns="$1::text[], $2::text[], $3::text[]"
)


async def score_batch(
    session: AsyncSession,
    *,
    prospects: Sequence[tuple[str, str, str]],
    purchases: Sequence[PurchaseSeen],
    as_of: date | None = None,
    prepared: PreparedPurchases | None = None,
) -> list[events.TierChange]:
    """One consumed batch: its facts, then every store of the batch locked, new files, and the
    purchases folded in and ranked (classified apart, by scores/classify.py).

    ``prepared``: the same purchases made ready before the transaction, used when the batch is
    a first delivery (all of them new); otherwise the fresh ones are folded here.

    Registrations lock too: a file inserted by one member and bought by another must not wait
    on a row while holding a store the other needs."""
    db, fresh, prepared, refunded = await _before_add(
        session, prospects=prospects, purchases=purchases, prepared=prepared
    )
    if not fresh:
        return []
    now, since = window_start(as_of)
    folded = (prepared or PreparedPurchases.of(fresh)).folded
    return await batch_add.add_and_rank(
        db, folded, _stores(fresh), now=now, since=since, refunded=refunded
    )


async def score_and_classify_batch(
    session: AsyncSession,
    *,
    prospects: Sequence[tuple[str, str, str]],
    purchases: Sequence[PurchaseSeen],
    as_of: date | None = None,
    prepared: PreparedPurchases | None = None,
) -> batch_add.Added:
    """:func:`score_batch` with the buyers' classification in the same statement (each row
    written once, one ``score.changed`` per customer); who is left to classify comes back."""
    db, fresh, prepared, refunded = await _before_add(
        session, prospects=prospects, purchases=purchases, prepared=prepared
    )
    if not fresh:
        return batch_add.Added(moved=0)
    now, since = window_start(as_of)
    folded = (prepared or PreparedPurchases.of(fresh)).folded
    return await batch_add.add_rank_and_classify(
        db, folded, _stores(fresh), now=now, since=since, refunded=refunded
    )


async def _before_add(
    session: AsyncSession,
    *,
    prospects: Sequence[tuple[str, str, str]],
    purchases: Sequence[PurchaseSeen],
    prepared: PreparedPurchases | None,
) -> tuple[asyncpg.Connection, list[PurchaseSeen], PreparedPurchases | None, list[str]]:
    """The facts, the stores' locks, the new files and the refunds waiting for the batch's
    purchases; the purchases not stored before, made ready, and the customers refunded."""
    db = await driver_connection(session)
    bulk = first_delivery(session)
    fresh, prepared = await store_facts(
        db, purchases, prepared=prepared if bulk else None, bulk=bulk
    )
    await lock_stores_on(db, {s for _, s, _ in prospects} | {p.store_id for p in fresh})
    await _register_prospects(db, customers=prospects)
    # Refunds that arrived before their purchase, applied to its fact under the store's lock
    # (an empty partial index to look in, in the normal run of things).
    refunded = await refund_facts.apply_due(db, [p.purchase_id for p in fresh])
    return db, fresh, prepared, [c for c, _, _ in refunded]


def _stores(purchases: Sequence[PurchaseSeen]) -> list[str]:
    return sorted({p.store_id for p in purchases})


async def apply_purchases(
    session: AsyncSession, *, purchases: Sequence[PurchaseSeen], as_of: date | None = None
) -> list[events.TierChange]:
    """Fold new purchases into aggregates, re-rank their stores, stage ``score.changed``."""
    return await score_batch(session, prospects=[], purchases=purchases, as_of=as_of)


async def register_prospects(
    session: AsyncSession, *, customers: Sequence[tuple[str, str, str]]
) -> list[events.TierChange]:
    """Files with no purchase yet are ``prospect``s; (customer_id, store_id, timezone) each."""
    return await score_batch(session, prospects=customers, purchases=[])


async def rescore_refunded(
    db: asyncpg.Connection, *, customers: Sequence[refund_facts.Refunded], as_of: date | None
) -> list[events.TierChange]:
    """Customers whose facts refunds changed: their spend and tiers (and the others' they push)
    through the batch's statement, as a batch of no purchases, then their aggregates rebuilt
    from the facts. The caller holds their stores' locks."""
    if not customers:
        return []
    now, since = window_start(as_of)
    none = [None] * len(customers)
    folded: list[list[Any]] = [
        [c for c, _, _ in customers],
        [s for _, s, _ in customers],
        [z for _, _, z in customers],
        [0] * len(customers),
        none,
        none,
        none,
        [0] * len(customers),
    ]
    stores = sorted({s for _, s, _ in customers})
    return await batch_add.add_and_rank(
        db, folded, stores, now=now, since=since, refunded=[c for c, _, _ in customers]
    )


async def _register_prospects(
    db: asyncpg.Connection, *, customers: Sequence[tuple[str, str, str]]
) -> None:
    if not customers:
        return
    columns = list(zip(*customers, strict=True))
    try:
        joined = [text_lists.joined(column) for column in columns]
    except ValueError:
        arrays = [list(column) for column in columns]
        await db.execute(_INSERT_PROSPECTS_ARRAYS_SQL, *arrays, datetime.now(UTC))
    else:
        await db.execute(_INSERT_PROSPECTS_JOINED_SQL, *joined, datetime.now(UTC))


async def get_score(
    session: AsyncSession, *, principal: Principal, customer_id: str
) -> CustomerScore:
    query = select(CustomerScore).where(col(CustomerScore.customer_id) == customer_id)
    if (scope := principal.store_scope()) is not None:
        query = query.where(col(CustomerScore.store_id) == scope)
    score = (await session.execute(query)).scalar_one_or_none()
    if score is None:
        raise NotFound("No score for this customer yet")
    return score
