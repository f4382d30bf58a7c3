"""Scoring: apply purchases to aggregates, then re-rank the touched stores' value pyramid.

Several replicas consume in one group, so two transactions may touch one store at once. Each
takes a per-store advisory lock (:func:`lock_stores`) before it reads or writes any spend or
tier of that store; the next one waits for the commit and, in READ COMMITTED, every later
statement of it sees what the first committed. Without it a re-rank works on a snapshot that
lacks the other member's spend and writes stale tiers (or two re-ranks deadlock on each other's
rows).
"""

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_libs.principal import Principal
from crm_libs.problems import NotFound
from scoring_service.scores import events
from scoring_service.scores.aggregates import Aggregate, PurchaseSeen
from scoring_service.scores.models import CustomerScore
from scoring_service.scores.tiers import INACTIVE, PROSPECT, WINDOW_DAYS, tier_case_sql

_TIER_CASE, _TIER_PARAMS = tier_case_sql()

# The two-int advisory lock space of "re-ranking store X" (disjoint from the one-bigint space of
# the window-refresh leader lock); the second int is hashtext(store_id). Taken in key order,
# so members locking overlapping sets of stores never deadlock, even if two stores' hashes
# collide (they then merely share a lock). Sorted after the ORDER BY: the planner evaluates a
# volatile target list above the sort.
RERANK_LOCK_SPACE = 72_365_002
_LOCK_STORES_SQL = text(
    """
    SELECT pg_advisory_xact_lock(CAST(:space AS integer), k.key)
    FROM (SELECT DISTINCT hashtext(s) AS key FROM unnest(CAST(:stores AS text[])) AS s) AS k
    ORDER BY k.key
    """
)

# Rank the spenders of every store of the batch in one statement: rank()-1 is "how many spend
# strictly more", so ties share a tier. Only customers with spend in the window are ranked (the
# rest are inactive: no window function over them); only rows whose tier moved are written,
# and their score.changed rows are staged by the same statement. Partitions compare store ids
# bytewise (COLLATE "C"): any order groups them, and it is the cheapest. Only constants are
# interpolated (the tier names and CASE from tiers.py, the staging CTEs from events.py).
_RERANK_SQL = text(  # noqa: S608
    f"""
    WITH ranked AS (
        SELECT customer_id, value_tier AS previous_tier, net_spend_365d,
               rank() OVER (PARTITION BY store_id COLLATE "C"
                            ORDER BY net_spend_365d DESC) - 1 AS greater,
               count(*) OVER (PARTITION BY store_id COLLATE "C") AS spenders
        FROM customer_score
        WHERE store_id = ANY(CAST(:stores AS text[])) AND purchase_count > 0
          AND net_spend_365d > 0
    ), tiered AS (
        SELECT customer_id, previous_tier, net_spend_365d, {_TIER_CASE} AS tier FROM ranked
        UNION ALL
        SELECT customer_id, value_tier, net_spend_365d, '{INACTIVE}' FROM customer_score
        WHERE store_id = ANY(CAST(:stores AS text[])) AND purchase_count > 0
          AND net_spend_365d <= 0 AND value_tier IS DISTINCT FROM '{INACTIVE}'
    ), moved AS (
        UPDATE customer_score AS cs
        SET value_tier = t.tier, version = cs.version + 1, computed_at = :now
        FROM (SELECT * FROM tiered WHERE previous_tier IS DISTINCT FROM tier) AS t
        WHERE cs.customer_id = t.customer_id AND cs.value_tier IS DISTINCT FROM t.tier
        RETURNING cs.customer_id, cs.store_id, t.previous_tier, t.tier AS value_tier,
                  cs.version, t.net_spend_365d
    ), {events.staging_sql("moved")}
    SELECT customer_id, store_id, previous_tier, value_tier, version, net_spend_365d FROM moved
    """
)

# Statements as text with array parameters: compiled once, one round trip per batch.
_INSERT_FACTS_SQL = text(
    """
    INSERT INTO purchase_fact (purchase_id, store_id, customer_id, purchased_at, purchased_on,
                               timezone, total, supply_days)
    SELECT * FROM unnest(
        CAST(:ids AS text[]), CAST(:stores AS text[]), CAST(:customers AS text[]),
        CAST(:ats AS timestamptz[]), CAST(:ons AS date[]), CAST(:zones AS text[]),
        CAST(:totals AS numeric[]), CAST(:days AS integer[])
    )
    ON CONFLICT (purchase_id) DO NOTHING
    RETURNING purchase_id
    """
)

# Locked in a stable order so concurrent group members never deadlock on each other.
_LOCK_SCORES_SQL = text(
    """
    SELECT customer_id, store_id, timezone, purchase_count, first_purchase_at, last_purchase_at,
           supply_runs_out_on
    FROM customer_score
    WHERE customer_id = ANY(CAST(:ids AS text[]))
    ORDER BY customer_id
    FOR UPDATE
    """
)

# Every stored purchase of the customers whose aggregate starts again, in date order.
_CUSTOMER_FACTS_SQL = text(
    """
    SELECT purchase_id, store_id, customer_id, purchased_at, purchased_on, timezone, total,
           supply_days
    FROM purchase_fact
    WHERE customer_id = ANY(CAST(:ids AS text[]))
    ORDER BY customer_id, purchased_at, purchase_id
    """
)

# The aggregates and the spend in the trailing window, each row written once per batch.
_UPSERT_SCORES_SQL = text(
    """
    INSERT INTO customer_score (customer_id, store_id, timezone, purchase_count,
                                first_purchase_at, last_purchase_at, supply_runs_out_on,
                                net_spend_365d, version, computed_at)
    SELECT c, s, z, n, f, l, r,
           COALESCE((SELECT SUM(pf.total) FROM purchase_fact AS pf
                     WHERE pf.customer_id = t.c AND pf.purchased_at > :since), 0),
           0, :now
    FROM unnest(
        CAST(:ids AS text[]), CAST(:stores AS text[]), CAST(:zones AS text[]),
        CAST(:counts AS integer[]), CAST(:firsts AS timestamptz[]), CAST(:lasts AS timestamptz[]),
        CAST(:runs_out AS date[])
    ) AS t(c, s, z, n, f, l, r)
    ON CONFLICT (customer_id) DO UPDATE SET
        timezone = excluded.timezone,
        purchase_count = excluded.purchase_count,
        first_purchase_at = excluded.first_purchase_at,
        last_purchase_at = excluded.last_purchase_at,
        supply_runs_out_on = excluded.supply_runs_out_on,
        net_spend_365d = excluded.net_spend_365d,
        computed_at = excluded.computed_at
    """
)

# A registration that arrives after a purchase (another topic, no ordering) changes nothing.
_INSERT_PROSPECTS_SQL = text(  # noqa: S608
    f"""
    WITH registered AS (
        INSERT INTO customer_score (customer_id, store_id, timezone, purchase_count,
                                    net_spend_365d, value_tier, version, computed_at)
        SELECT c, s, z, 0, 0, '{PROSPECT}', 1, :now FROM unnest(
            CAST(:ids AS text[]), CAST(:stores AS text[]), CAST(:zones AS text[])
        ) AS t(c, s, z)
        ON CONFLICT (customer_id) DO NOTHING
        RETURNING customer_id, store_id, CAST(NULL AS text) AS previous_tier,
                  value_tier, version, net_spend_365d
    ), {events.staging_sql("registered")}
    SELECT customer_id, store_id, previous_tier, value_tier, version, net_spend_365d
    FROM registered
    """
)

_WINDOW_SPEND_SQL = text(
    """
    UPDATE customer_score AS cs
    SET net_spend_365d = COALESCE(s.spend, 0), computed_at = :now
    FROM (
        SELECT c.customer_id, SUM(f.total) AS spend
        FROM unnest(CAST(:ids AS text[])) AS c(customer_id)
        LEFT JOIN purchase_fact f ON f.customer_id = c.customer_id AND f.purchased_at > :since
        GROUP BY c.customer_id
    ) AS s
    WHERE cs.customer_id = s.customer_id
    """
)


def window_start(as_of: date | None) -> tuple[datetime, datetime]:
    """(now, start of the trailing window); ``as_of`` pins "now" for historical replays."""
    now = datetime.now(UTC) if as_of is None else datetime.combine(as_of, time.max, tzinfo=UTC)
    return now, now - timedelta(days=WINDOW_DAYS)


async def score_batch(
    session: AsyncSession,
    *,
    prospects: list[tuple[str, str, str]],
    purchases: list[PurchaseSeen],
    as_of: date | None = None,
) -> list[events.TierChange]:
    """One consumed batch: new files, then purchases; every store of the batch locked first.

    Registrations lock too: a file inserted by one member and bought by another must not wait
    on a row while holding a store the other needs."""
    await lock_stores(
        session, store_ids={s for _, s, _ in prospects} | {p.store_id for p in purchases}
    )
    changes = await _register_prospects(session, customers=prospects)
    return changes + await _apply_purchases(session, purchases=purchases, as_of=as_of)


async def apply_purchases(
    session: AsyncSession, *, purchases: list[PurchaseSeen], as_of: date | None = None
) -> list[events.TierChange]:
    """Fold new purchases into aggregates, re-rank their stores, stage ``score.changed``."""
    await lock_stores(session, store_ids={p.store_id for p in purchases})
    return await _apply_purchases(session, purchases=purchases, as_of=as_of)


async def register_prospects(
    session: AsyncSession, *, customers: list[tuple[str, str, str]]
) -> list[events.TierChange]:
    """Files with no purchase yet are ``prospect``s; (customer_id, store_id, timezone) each."""
    await lock_stores(session, store_ids={s for _, s, _ in customers})
    return await _register_prospects(session, customers=customers)


async def lock_stores(session: AsyncSession, *, store_ids: Iterable[str]) -> None:
    """Wait until no other transaction re-ranks these stores; held until this one ends.

    Taken before any spend or tier of the stores is read (each statement after it then sees
    what the previous holder committed) and before any of their rows is locked."""
    stores = sorted(set(store_ids))
    if stores:
        await session.execute(_LOCK_STORES_SQL, {"space": RERANK_LOCK_SPACE, "stores": stores})


async def _apply_purchases(
    session: AsyncSession, *, purchases: list[PurchaseSeen], as_of: date | None
) -> list[events.TierChange]:
    if not purchases:
        return []
    now, since = window_start(as_of)
    fresh = await _store_facts(session, purchases)
    if not fresh:
        return []
    customer_ids = sorted({p.customer_id for p in fresh})
    aggregates = {
        row.customer_id: Aggregate(**row._mapping)
        for row in await session.execute(_LOCK_SCORES_SQL, {"ids": customer_ids})
    }
    # Supply carries over, so aggregates fold in purchase-date order, not arrival order.
    fresh.sort(key=PurchaseSeen.date_order)
    late = sorted(
        {
            p.customer_id
            for p in fresh
            if (a := aggregates.get(p.customer_id)) and a.is_before_last(p)
        }
    )
    for p in fresh:
        aggregate = aggregates.get(p.customer_id)
        if aggregate is None:
            aggregate = aggregates[p.customer_id] = Aggregate(
                customer_id=p.customer_id, store_id=p.store_id, timezone=p.timezone
            )
        aggregate.fold(p)
    if late:  # rare (a back-dated purchase): one more statement for the batch, not per event
        await _rebuild(session, {c: aggregates[c] for c in late})
    touched = [aggregates[c] for c in customer_ids]
    await session.execute(
        _UPSERT_SCORES_SQL,
        {
            "ids": customer_ids,
            "stores": [a.store_id for a in touched],
            "zones": [a.timezone for a in touched],
            "counts": [a.purchase_count for a in touched],
            "firsts": [a.first_purchase_at for a in touched],
            "lasts": [a.last_purchase_at for a in touched],
            "runs_out": [a.supply_runs_out_on for a in touched],
            "since": since,
            "now": now,
        },
    )
    return await rerank_stores(session, store_ids={p.store_id for p in fresh}, now=now)


async def _rebuild(session: AsyncSession, aggregates: dict[str, Aggregate]) -> None:
    """Recompute these customers' aggregates from all their stored purchases (this batch's
    included), in purchase-date order."""
    facts: dict[str, list[PurchaseSeen]] = {c: [] for c in aggregates}
    for row in await session.execute(_CUSTOMER_FACTS_SQL, {"ids": list(aggregates)}):
        facts[row.customer_id].append(PurchaseSeen(**row._mapping))
    for customer_id, aggregate in aggregates.items():
        aggregate.rebuild(facts[customer_id])


async def _register_prospects(
    session: AsyncSession, *, customers: list[tuple[str, str, str]]
) -> list[events.TierChange]:
    if not customers:
        return []
    rows = await session.execute(
        _INSERT_PROSPECTS_SQL,
        {
            "ids": [c for c, _, _ in customers],
            "stores": [s for _, s, _ in customers],
            "zones": [z for _, _, z in customers],
            "now": datetime.now(UTC),
        },
    )
    return [events.TierChange(**r._mapping) for r in rows]


async def rerank_stores(
    session: AsyncSession, *, store_ids: Iterable[str], now: datetime
) -> list[events.TierChange]:
    """Recompute the pyramid of the stores; stage an event for every customer whose tier moved.

    One statement for all of them. The caller holds the stores' locks (:func:`lock_stores`)."""
    stores = sorted(set(store_ids))
    if not stores:
        return []
    result = await session.execute(_RERANK_SQL, {"stores": stores, "now": now, **_TIER_PARAMS})
    return [events.TierChange(**r._mapping) for r in result]


async def refresh_windows(
    session: AsyncSession, *, store_id: str, as_of: date | None = None
) -> int:
    """Let purchases age out of the trailing window for a whole store, then re-rank it.

    The store's lock first: spend written back by this refresh must include every purchase
    committed before it (an UPDATE that waited for a row would otherwise write the sum it
    computed before that purchase committed)."""
    await lock_stores(session, store_ids=[store_id])
    now, since = window_start(as_of)
    ids = list(
        (
            await session.execute(
                select(col(CustomerScore.customer_id)).where(
                    col(CustomerScore.store_id) == store_id
                )
            )
        ).scalars()
    )
    await session.execute(_WINDOW_SPEND_SQL, {"ids": ids, "since": since, "now": now})
    return len(await rerank_stores(session, store_ids=[store_id], now=now))


async def _store_facts(session: AsyncSession, purchases: list[PurchaseSeen]) -> list[PurchaseSeen]:
    """Insert the purchase facts; return only purchases not stored before (a second guard)."""
    result = await session.execute(
        _INSERT_FACTS_SQL,
        {
            "ids": [p.purchase_id for p in purchases],
            "stores": [p.store_id for p in purchases],
            "customers": [p.customer_id for p in purchases],
            "ats": [p.purchased_at for p in purchases],
            "ons": [p.purchased_on for p in purchases],
            "zones": [p.timezone for p in purchases],
            "totals": [p.total for p in purchases],
            "days": [p.supply_days for p in purchases],
        },
    )
    inserted = set(result.scalars())
    fresh = []
    for p in purchases:
        if p.purchase_id in inserted:
            inserted.discard(p.purchase_id)  # the same purchase twice in one batch counts once
            fresh.append(p)
    return fresh


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
