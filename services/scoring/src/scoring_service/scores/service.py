"""Scoring: apply purchases to aggregates, then re-rank the touched stores' value pyramid.

Several replicas consume in one group, so two transactions may touch one store at once. Each
takes a per-store advisory lock (:func:`lock_stores`) before it reads or writes any spend or
tier of that store; the next one waits for the commit and, in READ COMMITTED, every later
statement of it sees what the first committed. Without it a re-rank works on a snapshot that
lacks the other member's spend and writes stale tiers (or two re-ranks deadlock on each other's
rows). A batch's purchase facts go in before that lock: they are keyed by purchase and read
only for their own customer's spend, so the lock is held for the aggregates and the ranking.

A batch is a fixed number of statements however large it is, sent straight to asyncpg
(:func:`~crm_libs.events.driver.driver_connection`): array parameters or one COPY each.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import asyncpg
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_libs.events.consumer import first_delivery
from crm_libs.events.driver import driver_connection
from crm_libs.principal import Principal
from crm_libs.problems import NotFound
from scoring_service.scores import events
from scoring_service.scores.aggregates import PurchaseSeen, fold_batch
from scoring_service.scores.models import CustomerScore
from scoring_service.scores.tiers import INACTIVE, PROSPECT, WINDOW_DAYS, tier_case_sql

_TIER_CASE, _TIER_PARAMS = tier_case_sql(first_parameter=3)

# The two-int advisory lock space of "re-ranking store X" (disjoint from the one-bigint space of
# the window-refresh leader lock); the second int is hashtext(store_id). Taken in key order,
# so members locking overlapping sets of stores never deadlock, even if two stores' hashes
# collide (they then merely share a lock). Sorted after the ORDER BY: the planner evaluates a
# volatile target list above the sort.
RERANK_LOCK_SPACE = 72_365_002
_LOCK_STORES_SQL = """
    SELECT pg_advisory_xact_lock($1::integer, k.key)
    FROM (SELECT DISTINCT hashtext(s) AS key FROM unnest($2::text[]) AS s) AS k
    ORDER BY k.key
"""

# Rank the spenders of every store of the batch in one statement: rank()-1 is "how many spend
# strictly more", so ties share a tier. Only customers with spend in the window are ranked (the
# rest are inactive: no window function over them); only rows whose tier moved are written,
# and their score.changed rows are staged by the same statement. Partitions compare store ids
# bytewise (COLLATE "C"): any order groups them, and it is the cheapest. Only constants are
# interpolated (the tier names and CASE from tiers.py, the staging CTEs from events.py).
# $1 stores, $2 now, $3.. the pyramid's bounds.
_RERANK_SQL = f"""
    WITH ranked AS (
        SELECT customer_id, value_tier AS previous_tier, net_spend_365d,
               rank() OVER (PARTITION BY store_id COLLATE "C"
                            ORDER BY net_spend_365d DESC) - 1 AS greater,
               count(*) OVER (PARTITION BY store_id COLLATE "C") AS spenders
        FROM customer_score
        WHERE store_id = ANY($1::text[]) AND purchase_count > 0 AND net_spend_365d > 0
    ), tiered AS (
        SELECT customer_id, previous_tier, net_spend_365d, {_TIER_CASE} AS tier FROM ranked
        UNION ALL
        SELECT customer_id, value_tier, net_spend_365d, '{INACTIVE}' FROM customer_score
        WHERE store_id = ANY($1::text[]) AND purchase_count > 0
          AND net_spend_365d <= 0 AND value_tier IS DISTINCT FROM '{INACTIVE}'
    ), moved AS (
        UPDATE customer_score AS cs
        SET value_tier = t.tier, version = cs.version + 1, computed_at = $2
        FROM (SELECT * FROM tiered WHERE previous_tier IS DISTINCT FROM tier) AS t
        WHERE cs.customer_id = t.customer_id AND cs.value_tier IS DISTINCT FROM t.tier
        RETURNING cs.customer_id, cs.store_id, t.previous_tier, t.tier AS value_tier,
                  cs.version, t.net_spend_365d
    ), {events.staging_sql("moved")}
    SELECT customer_id, store_id, previous_tier, value_tier, version, net_spend_365d FROM moved
"""  # noqa: S608

_FACT_COLUMNS = (
    "purchase_id",
    "store_id",
    "customer_id",
    "purchased_at",
    "purchased_on",
    "timezone",
    "total",
    "supply_days",
)
# Facts that may have been stored before (a replay): the new ones come back.
_INSERT_FACTS_SQL = """
    INSERT INTO purchase_fact (purchase_id, store_id, customer_id, purchased_at, purchased_on,
                               timezone, total, supply_days)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::date[],
                         $6::text[], $7::numeric[], $8::integer[])
    ON CONFLICT (purchase_id) DO NOTHING
    RETURNING purchase_id
"""


# A batch added to the stored aggregates (aggregates.BatchAggregate, one row per customer): in
# place where the batch is dated no earlier than the stored last purchase, a new row for a new
# customer. Returns the customers it could not add to (their batch starts before their last
# purchase): they are rebuilt from all their facts. The spend is summed again from the facts,
# for all of the batch's customers in one grouped scan.
# $1.. the batch's columns, $9 since, $10 now.
_ADD_BATCH_SQL = """
    WITH spent AS (
        SELECT customer_id, SUM(total) AS spend FROM purchase_fact
        WHERE customer_id = ANY($1::text[]) AND purchased_at > $9
        GROUP BY customer_id
    ), batch AS (
        SELECT b.*, COALESCE(s.spend, 0) AS spend
        FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[], $5::timestamptz[],
                    $6::timestamptz[], $7::date[], $8::integer[])
            AS b(customer_id, store_id, timezone, purchases, first_at, last_at, runs_out,
                 supply_days)
        LEFT JOIN spent AS s USING (customer_id)
    ), added AS (
        UPDATE customer_score AS cs SET
            timezone = b.timezone,
            purchase_count = cs.purchase_count + b.purchases,
            first_purchase_at = LEAST(cs.first_purchase_at, b.first_at),
            last_purchase_at = GREATEST(cs.last_purchase_at, b.last_at),
            -- aggregates.added_runs_out
            supply_runs_out_on = GREATEST(cs.supply_runs_out_on + b.supply_days, b.runs_out),
            net_spend_365d = b.spend,
            computed_at = $10
        FROM batch AS b
        WHERE cs.customer_id = b.customer_id
          AND (cs.last_purchase_at IS NULL OR cs.last_purchase_at <= b.first_at)
        RETURNING cs.customer_id
    ), created AS (
        INSERT INTO customer_score (customer_id, store_id, timezone, purchase_count,
                                    first_purchase_at, last_purchase_at, supply_runs_out_on,
                                    net_spend_365d, version, computed_at)
        SELECT b.customer_id, b.store_id, b.timezone, b.purchases, b.first_at, b.last_at,
               b.runs_out, b.spend, 0, $10
        FROM batch AS b
        WHERE NOT EXISTS (SELECT FROM customer_score AS cs WHERE cs.customer_id = b.customer_id)
        ON CONFLICT (customer_id) DO NOTHING
        RETURNING customer_id
    )
    SELECT customer_id FROM batch
    WHERE customer_id NOT IN (SELECT customer_id FROM added
                              UNION ALL SELECT customer_id FROM created)
"""

# Aggregates rebuilt from all of their customers' stored purchases, set-based: what
# Aggregate.rebuild folds purchase by purchase, in one statement for any number of customers.
# The fold r = max(day, r) + supply, over the purchases in date order, unrolls to
# max over k of (day_k + supply bought from k on) = all supply + max over k of (day_k - supply
# bought before k): a running sum, no loop. The time zone is the last purchase's, ties broken by
# id bytewise as PurchaseSeen.date_order does. Only rows that differ are written (a store's
# recompute of correct aggregates writes nothing). {source} selects the facts; $2 since, $3 now.
_REBUILD_SQL = """
    WITH facts AS (
        SELECT f.customer_id, f.purchased_at, f.purchased_on, f.total, f.supply_days,
               COALESCE(sum(f.supply_days) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING
                                                   AND 1 PRECEDING), 0) AS supply_before,
               last_value(f.timezone) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING
                                              AND UNBOUNDED FOLLOWING) AS last_timezone
        FROM purchase_fact AS f
        WHERE {source}
        WINDOW w AS (PARTITION BY f.customer_id
                     ORDER BY f.purchased_at, f.purchase_id COLLATE "C")
    ), rebuilt AS (
        SELECT customer_id, min(last_timezone) AS timezone, count(*) AS purchases,
               min(purchased_at) AS first_at, max(purchased_at) AS last_at,
               max(purchased_on - CAST(supply_before AS integer))
                   + CAST(sum(supply_days) AS integer) AS runs_out,
               COALESCE(sum(total) FILTER (WHERE purchased_at > $2), 0) AS spend
        FROM facts
        GROUP BY customer_id
    )
    UPDATE customer_score AS cs SET
        timezone = b.timezone,
        purchase_count = b.purchases,
        first_purchase_at = b.first_at,
        last_purchase_at = b.last_at,
        supply_runs_out_on = b.runs_out,
        net_spend_365d = b.spend,
        computed_at = $3
    FROM rebuilt AS b
    WHERE cs.customer_id = b.customer_id
      AND (cs.timezone, cs.purchase_count, cs.first_purchase_at, cs.last_purchase_at,
           cs.supply_runs_out_on, cs.net_spend_365d)
          IS DISTINCT FROM (b.timezone, b.purchases, b.first_at, b.last_at, b.runs_out, b.spend)
"""
_REBUILD_CUSTOMERS_SQL = _REBUILD_SQL.format(source="f.customer_id = ANY($1::text[])")
# A whole store: its customers are those of its score rows (a merge moves facts between them).
_REBUILD_STORE_SQL = _REBUILD_SQL.format(
    source="f.customer_id IN (SELECT customer_id FROM customer_score WHERE store_id = $1)"
)

# A registration that arrives after a purchase (another topic, no ordering) changes nothing.
_INSERT_PROSPECTS_SQL = f"""
    WITH registered AS (
        INSERT INTO customer_score (customer_id, store_id, timezone, purchase_count,
                                    net_spend_365d, value_tier, version, computed_at)
        SELECT c, s, z, 0, 0, '{PROSPECT}', 1, $4
        FROM unnest($1::text[], $2::text[], $3::text[]) AS t(c, s, z)
        ON CONFLICT (customer_id) DO NOTHING
        RETURNING customer_id, store_id, CAST(NULL AS text) AS previous_tier,
                  value_tier, version, net_spend_365d
    ), {events.staging_sql("registered")}
    SELECT customer_id, store_id, previous_tier, value_tier, version, net_spend_365d
    FROM registered
"""  # noqa: S608

# A whole store's spend in the trailing window, in one statement (no list of its customers
# through Python), written only where it moved: a refresh of a store of a million customers
# rewrote every row each hour. $1 store, $2 since, $3 now.
_WINDOW_SPEND_SQL = """
    UPDATE customer_score AS cs
    SET net_spend_365d = s.spend, computed_at = $3
    FROM (
        SELECT c.customer_id, COALESCE(SUM(f.total), 0) AS spend
        FROM customer_score AS c
        LEFT JOIN purchase_fact AS f ON f.customer_id = c.customer_id AND f.purchased_at > $2
        WHERE c.store_id = $1
        GROUP BY c.customer_id
    ) AS s
    WHERE cs.customer_id = s.customer_id AND cs.net_spend_365d IS DISTINCT FROM s.spend
"""


@dataclass
class PreparedPurchases:
    """A batch's purchases made ready for its statements before its transaction: the facts'
    rows for COPY and the batch folded per customer, as the statements' array parameters."""

    purchases: Sequence[PurchaseSeen]
    customer_ids: list[str]  # each purchase's, when made ready
    facts: list[tuple[object, ...]]  # the rows of purchase_fact
    folded: list[list[Any]]  # _ADD_BATCH_SQL's $1..$8

    def describes(self, purchases: Sequence[PurchaseSeen]) -> bool:
        """Whether these are still the purchases made ready, each for the same customer (a
        merge re-keys a purchase to its survivor in the transaction)."""
        return len(purchases) == len(self.customer_ids) and all(
            p.customer_id == c for p, c in zip(purchases, self.customer_ids, strict=True)
        )

    @classmethod
    def of(cls, purchases: Sequence[PurchaseSeen]) -> "PreparedPurchases":
        """Assumes every purchase is new (a first delivery); distinct ids are checked later."""
        batch = list(fold_batch(purchases).values())
        return cls(
            purchases=purchases,
            customer_ids=[p.customer_id for p in purchases],
            facts=[
                (
                    p.purchase_id,
                    p.store_id,
                    p.customer_id,
                    p.purchased_at,
                    p.purchased_on,
                    p.timezone,
                    p.total,
                    p.supply_days,
                )
                for p in purchases
            ],
            folded=[
                [a.customer_id for a in batch],
                [a.store_id for a in batch],
                [a.timezone for a in batch],
                [a.purchase_count for a in batch],
                [a.first_purchase_at for a in batch],
                [a.last_purchase_at for a in batch],
                [a.supply_runs_out_on for a in batch],
                [a.supply_days for a in batch],
            ],
        )


def window_start(as_of: date | None) -> tuple[datetime, datetime]:
    """(now, start of the trailing window); ``as_of`` pins "now" for historical replays."""
    now = datetime.now(UTC) if as_of is None else datetime.combine(as_of, time.max, tzinfo=UTC)
    return now, now - timedelta(days=WINDOW_DAYS)


async def score_batch(
    session: AsyncSession,
    *,
    prospects: Sequence[tuple[str, str, str]],
    purchases: Sequence[PurchaseSeen],
    as_of: date | None = None,
    prepared: PreparedPurchases | None = None,
) -> list[events.TierChange]:
    """One consumed batch: its facts, then every store of the batch locked, new files, and the
    purchases folded in and ranked.

    ``prepared``: the same purchases made ready before the transaction, used when the batch is
    a first delivery (all of them new); otherwise the fresh ones are folded here.

    Registrations lock too: a file inserted by one member and bought by another must not wait
    on a row while holding a store the other needs."""
    db = await driver_connection(session)
    bulk = first_delivery(session)
    fresh, prepared = await _store_facts(
        db, purchases, prepared=prepared if bulk else None, bulk=bulk
    )
    await _lock_stores(db, {s for _, s, _ in prospects} | {p.store_id for p in fresh})
    changes = await _register_prospects(db, customers=prospects)
    return changes + await _add_purchases(db, fresh, prepared=prepared, as_of=as_of)


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


async def lock_stores(session: AsyncSession, *, store_ids: Iterable[str]) -> None:
    """Wait until no other transaction re-ranks these stores; held until this one ends.

    Taken before any spend or tier of the stores is read (each statement after it then sees
    what the previous holder committed) and before any of their rows is locked."""
    await _lock_stores(await driver_connection(session), store_ids)


async def _lock_stores(db: asyncpg.Connection, store_ids: Iterable[str]) -> None:
    stores = sorted(set(store_ids))
    if stores:
        await db.execute(_LOCK_STORES_SQL, RERANK_LOCK_SPACE, stores)


async def _store_facts(
    db: asyncpg.Connection,
    purchases: Sequence[PurchaseSeen],
    *,
    prepared: PreparedPurchases | None,
    bulk: bool,
) -> tuple[list[PurchaseSeen], PreparedPurchases | None]:
    """Insert the purchase facts; return only purchases not stored before (a second guard),
    and ``prepared`` if it still describes them.

    ``bulk``: the batch's events are new to the group (the consumer claimed them with one COPY),
    so their facts are COPYed too when no purchase appears twice; a fact stored before (the same
    purchase in another event) fails the COPY, and the consumer applies the batch again."""
    if not purchases:
        return [], None
    if bulk and len({p.purchase_id for p in purchases}) == len(purchases):
        if prepared is None:
            prepared = PreparedPurchases.of(purchases)
        await db.copy_records_to_table(
            "purchase_fact", records=prepared.facts, columns=_FACT_COLUMNS
        )
        return list(purchases), prepared
    rows = await db.fetch(
        _INSERT_FACTS_SQL,
        [p.purchase_id for p in purchases],
        [p.store_id for p in purchases],
        [p.customer_id for p in purchases],
        [p.purchased_at for p in purchases],
        [p.purchased_on for p in purchases],
        [p.timezone for p in purchases],
        [p.total for p in purchases],
        [p.supply_days for p in purchases],
    )
    inserted = {r[0] for r in rows}
    fresh = []
    for p in purchases:
        if p.purchase_id in inserted:
            inserted.discard(p.purchase_id)  # the same purchase twice in one batch counts once
            fresh.append(p)
    return fresh, None


async def _add_purchases(
    db: asyncpg.Connection,
    fresh: list[PurchaseSeen],
    *,
    prepared: PreparedPurchases | None,
    as_of: date | None,
) -> list[events.TierChange]:
    """Fold new purchases into their customers' aggregates, then re-rank their stores.

    The caller holds the stores' locks."""
    if not fresh:
        return []
    now, since = window_start(as_of)
    # Supply carries over, so each customer's purchases fold in purchase-date order.
    folded = (prepared or PreparedPurchases.of(fresh)).folded
    late = await db.fetch(_ADD_BATCH_SQL, *folded, since, now)
    if late:  # rare (a back-dated purchase): one more statement for the batch, not per event
        await rebuild_aggregates(db, customer_ids=[r[0] for r in late], since=since, now=now)
    return await _rerank(db, {p.store_id for p in fresh}, now=now)


async def rebuild_aggregates(
    db: asyncpg.Connection,
    *,
    since: datetime,
    now: datetime,
    customer_ids: Sequence[str] | None = None,
    store_id: str | None = None,
) -> int:
    """Recompute the aggregates of these customers, or of every customer of ``store_id``, from
    all their stored purchases in purchase-date order; returns how many rows it corrected.

    The caller holds the stores' locks."""
    if (customer_ids is None) == (store_id is None):
        raise ValueError("rebuild_aggregates takes customer_ids or store_id, not both")
    if customer_ids is not None:
        status = await db.execute(_REBUILD_CUSTOMERS_SQL, list(customer_ids), since, now)
    else:
        status = await db.execute(_REBUILD_STORE_SQL, store_id, since, now)
    return int(status.rsplit(" ", 1)[-1])


async def _register_prospects(
    db: asyncpg.Connection, *, customers: Sequence[tuple[str, str, str]]
) -> list[events.TierChange]:
    if not customers:
        return []
    rows = await db.fetch(
        _INSERT_PROSPECTS_SQL,
        [c for c, _, _ in customers],
        [s for _, s, _ in customers],
        [z for _, _, z in customers],
        datetime.now(UTC),
    )
    return [events.TierChange(**r) for r in rows]


async def _rerank(
    db: asyncpg.Connection, store_ids: Iterable[str], *, now: datetime
) -> list[events.TierChange]:
    """Recompute the pyramid of the stores; stage an event for every customer whose tier moved.

    One statement for all of them. The caller holds the stores' locks."""
    stores = sorted(set(store_ids))
    if not stores:
        return []
    rows = await db.fetch(_RERANK_SQL, stores, now, *_TIER_PARAMS.values())
    return [events.TierChange(**r) for r in rows]


async def refresh_windows(
    session: AsyncSession, *, store_id: str, as_of: date | None = None
) -> int:
    """Let purchases age out of the trailing window for a whole store, then re-rank it.

    The store's lock first: spend written back by this refresh must include every purchase
    committed before it (an UPDATE that waited for a row would otherwise write the sum it
    computed before that purchase committed)."""
    db = await driver_connection(session)
    await _lock_stores(db, [store_id])
    now, since = window_start(as_of)
    await db.execute(_WINDOW_SPEND_SQL, store_id, since, now)
    return len(await _rerank(db, [store_id], now=now))


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
