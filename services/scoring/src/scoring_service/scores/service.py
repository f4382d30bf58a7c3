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
from scoring_service.scores import events, refund_facts
from scoring_service.scores.aggregates import PurchaseSeen, fold_batch
from scoring_service.scores.models import CustomerScore
from scoring_service.scores.tiers import (
    INACTIVE,
    PROSPECT,
    TIERS,
    WINDOW_DAYS,
    bounds_parameters,
    bounds_sql,
    rank_case_sql,
    threshold_case_sql,
)

# The loyalty classify.py gives a file with no purchase and no competitors' products in use.
PROSPECT_LOYALTY = "floating"
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

# Rank every spender of the stores in one statement (after a merge, or the window's ageing:
# spend moved all over the store): rank()-1 is "how many spend strictly more", so ties share a
# tier. Only customers with spend in the window are ranked (the rest are inactive: no window
# function over them); only rows whose tier moved are written, and their score.changed rows are
# staged by the same statement. Partitions compare store ids bytewise (COLLATE "C"): any order
# groups them, and it is the cheapest. Only constants are interpolated (the tier names and
# CASE from tiers.py, the staging CTEs from events.py).
# $1 now, $2.. the stores and their bounds (tiers.bounds_parameters).
_RERANK_SQL = f"""
    WITH ranked AS (
        SELECT cs.customer_id, cs.value_tier AS previous_tier, cs.net_spend_365d,
               rank() OVER (PARTITION BY cs.store_id COLLATE "C"
                            ORDER BY cs.net_spend_365d DESC) - 1 AS greater,
               count(*) OVER (PARTITION BY cs.store_id COLLATE "C") AS spenders,
               {", ".join(f"sb.bound_{i + 1}" for i in range(len(TIERS)))}
        FROM {bounds_sql(2)}
        JOIN customer_score AS cs ON cs.store_id = sb.store_id
        WHERE cs.purchase_count > 0 AND cs.net_spend_365d > 0
    ), tiered AS (
        SELECT customer_id, previous_tier, net_spend_365d,
               {rank_case_sql(greater="greater", spenders="spenders", bounds="ranked")} AS tier
        FROM ranked
        UNION ALL
        -- No spend: inactive, or a prospect again when every purchase was refunded
        -- (scores/refund_facts.py).
        SELECT customer_id, value_tier, net_spend_365d,
               CASE WHEN purchase_count > 0 THEN '{INACTIVE}' ELSE '{PROSPECT}' END
        FROM customer_score
        WHERE store_id = ANY($2::text[]) AND net_spend_365d <= 0
          AND value_tier IS DISTINCT FROM
              CASE WHEN purchase_count > 0 THEN '{INACTIVE}' ELSE '{PROSPECT}' END
    ), moved AS (
        UPDATE customer_score AS cs
        SET value_tier = t.tier, version = cs.version + 1, computed_at = $1
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
    "line_skus",
    "line_categories",
    "line_quantities",
)
# Facts that may have been stored before (a replay): the new ones come back. The lines go as
# one text each ('{a,b}': a purchase's array literal), as unnest cannot take arrays of arrays.
_INSERT_FACTS_SQL = """
    INSERT INTO purchase_fact (purchase_id, store_id, customer_id, purchased_at, purchased_on,
                               timezone, total, supply_days, line_skus, line_categories,
                               line_quantities)
    SELECT p, s, c, a, o, z, t, d, CAST(ls AS text[]), CAST(lc AS text[]), CAST(lq AS integer[])
    FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::date[],
                $6::text[], $7::numeric[], $8::integer[], $9::text[], $10::text[], $11::text[])
        AS f(p, s, c, a, o, z, t, d, ls, lc, lq)
    ON CONFLICT (purchase_id) DO NOTHING
    RETURNING purchase_id
"""


def _places_sql(spenders: str) -> str:
    """Each bound's tiers.threshold_place among ``spenders`` (SQL), an array in TIERS' order."""
    places = ", ".join(
        f"CAST(NULLIF(GREATEST(LEAST(ceil(bound_{i + 1} * {spenders}), {spenders}), 0), 0)"
        " AS integer)"
        for i in range(len(TIERS))
    )
    return f"ARRAY[{places}]"


def _at_places_sql(top: str, places: str) -> str:
    """The spends of ``top`` (descending) at ``places``: the thresholds, in TIERS' order."""
    return "ARRAY[" + ", ".join(f"{top}[{places}[{i + 1}]]" for i in range(len(TIERS))) + "]"


def _deepest_sql(places: str) -> str:
    """How many of the top spends the thresholds at ``places`` need (0 for none)."""
    return (
        "COALESCE(GREATEST(" + ", ".join(f"{places}[{i + 1}]" for i in range(len(TIERS))) + "), 0)"
    )


# A batch added to the stored aggregates and ranked, in one statement, each of its customers'
# rows written once, with the tier (a re-rank after the add wrote each of them twice).
#
# Aggregates (aggregates.BatchAggregate, one row per customer) are added in place where the
# batch is dated no earlier than the stored last purchase, and inserted for a new customer. The
# spend is summed again from the facts, for all of the batch's customers in one grouped scan;
# it does not depend on the order purchases are folded in, so a back-dated customer ("late":
# the batch starts before their last purchase) gets its spend and tier here too, and only its
# other aggregates are rebuilt from all its facts afterwards (rebuild_aggregates).
#
# Ranked without ranking the stores (tiers.py: each bound is a threshold on spend): each store's
# spenders are counted before and after the batch; each bound's threshold is read off the top
# spends (the (store_id, net_spend_365d) index, as deep as the largest bound's place) before the
# batch, and after it among everyone else's stored spends and the batch's new ones; the batch's
# customers get their tiers from the thresholds after, and everyone else whose spend lies
# between a threshold before and after is given their tier again. Nobody else's tier can have
# moved: their spends did not, and neither did a threshold across them. Only tiers that moved
# stage score.changed. The caller holds the stores' locks, so what this statement reads of
# them is what the previous holder committed, and the stored tiers are those of the stored
# spends.
#
# Returns the tiers that moved (kind 'moved', the columns of events.TierChange), the back-dated
# customers ('late') and any it could not write ('missed': a row inserted meanwhile, which the
# store locks should rule out), to be rebuilt, and for 'missed' their stores ranked whole.
# $1..$8 the batch's columns, $9 since, $10 now, $11.. the stores and their bounds
# (tiers.bounds_parameters). A customer's store is that of their row (a file's store does not
# change), else the batch's.
_ADD_BATCH_SQL = f"""
    WITH spent AS (
        -- The window is the store's own where it set one (scores/tier_rules.py), else $9's.
        SELECT f.customer_id, SUM(f.total) AS spend
        FROM purchase_fact AS f LEFT JOIN store_tier_rules AS r ON r.store_id = f.store_id
        WHERE f.customer_id = ANY($1::text[])
          AND f.purchased_at > COALESCE($10::timestamptz - r.window_days * interval '24 hours', $9)
        GROUP BY f.customer_id
    ), batch AS (
        SELECT b.customer_id, COALESCE(cs.store_id, b.store_id) AS store_id, b.timezone,
               b.purchases, b.first_at, b.last_at, b.runs_out, b.supply_days,
               COALESCE(s.spend, 0) AS spend, cs.customer_id IS NOT NULL AS stored,
               COALESCE(cs.last_purchase_at > b.first_at, false) AS late,
               cs.value_tier AS previous_tier, COALESCE(cs.net_spend_365d, 0) AS previous_spend
        FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[], $5::timestamptz[],
                    $6::timestamptz[], $7::date[], $8::integer[])
            AS b(customer_id, store_id, timezone, purchases, first_at, last_at, runs_out,
                 supply_days)
        LEFT JOIN spent AS s USING (customer_id)
        LEFT JOIN customer_score AS cs USING (customer_id)
    ), counted AS (
        SELECT sb.*, n.before, n.before - COALESCE(m.leaving, 0) + COALESCE(m.joining, 0) AS after
        FROM {bounds_sql(11)}
        CROSS JOIN LATERAL (
            SELECT count(*) AS before FROM customer_score AS cs
            WHERE cs.store_id = sb.store_id AND cs.net_spend_365d > 0
        ) AS n
        LEFT JOIN (
            SELECT store_id, count(*) FILTER (WHERE previous_spend > 0) AS leaving,
                   count(*) FILTER (WHERE spend > 0) AS joining
            FROM batch GROUP BY store_id
        ) AS m USING (store_id)
    ), placed AS (
        SELECT store_id, {_places_sql("before")} AS before_at, {_places_sql("after")} AS after_at
        FROM counted
    ), thresholds AS (
        SELECT p.store_id, {_at_places_sql("b.top", "p.before_at")} AS before,
               {_at_places_sql("a.top", "p.after_at")} AS after
        FROM placed AS p
        CROSS JOIN LATERAL (
            SELECT array_agg(t.spend ORDER BY t.spend DESC) AS top FROM (
                SELECT cs.net_spend_365d AS spend FROM customer_score AS cs
                WHERE cs.store_id = p.store_id AND cs.net_spend_365d > 0
                ORDER BY cs.net_spend_365d DESC LIMIT {_deepest_sql("p.before_at")}
            ) AS t
        ) AS b
        CROSS JOIN LATERAL (
            SELECT array_agg(t.spend ORDER BY t.spend DESC) AS top FROM (
                (SELECT cs.net_spend_365d AS spend FROM customer_score AS cs
                 WHERE cs.store_id = p.store_id AND cs.net_spend_365d > 0
                   AND cs.customer_id NOT IN (SELECT customer_id FROM batch)
                 ORDER BY cs.net_spend_365d DESC LIMIT {_deepest_sql("p.after_at")})
                UNION ALL
                SELECT spend FROM batch WHERE batch.store_id = p.store_id AND batch.spend > 0
            ) AS t
        ) AS a
    ), tiered AS (
        SELECT b.*, {threshold_case_sql(spend="b.spend", thresholds="t.after")} AS tier
        FROM batch AS b JOIN thresholds AS t USING (store_id)
    ), crossed AS (
        -- Between each bound's threshold before and after, the lower one included: a range of
        -- the index per store and bound, read as such (OFFSET 0: not flattened into a join
        -- over the whole table). NULL on one side: nobody but the batch's customers spends.
        SELECT DISTINCT cs.customer_id, cs.value_tier AS previous_tier,
               {threshold_case_sql(spend="cs.net_spend_365d", thresholds="t.after")} AS tier
        FROM thresholds AS t
        CROSS JOIN generate_subscripts(t.after, 1) AS i
        CROSS JOIN LATERAL (
            SELECT cs.customer_id, cs.value_tier, cs.net_spend_365d FROM customer_score AS cs
            WHERE cs.store_id = t.store_id
              AND cs.net_spend_365d >= LEAST(t.before[i], t.after[i])
              AND cs.net_spend_365d < GREATEST(t.before[i], t.after[i])
            OFFSET 0
        ) AS cs
        WHERE cs.customer_id NOT IN (SELECT customer_id FROM batch)
    ), added AS (
        UPDATE customer_score AS cs SET
            timezone = b.timezone,
            purchase_count = cs.purchase_count + b.purchases,
            first_purchase_at = LEAST(cs.first_purchase_at, b.first_at),
            last_purchase_at = GREATEST(cs.last_purchase_at, b.last_at),
            -- aggregates.added_runs_out
            supply_runs_out_on = GREATEST(cs.supply_runs_out_on + b.supply_days, b.runs_out),
            net_spend_365d = b.spend,
            value_tier = b.tier,
            version = cs.version + CASE WHEN cs.value_tier IS DISTINCT FROM b.tier
                                        THEN 1 ELSE 0 END,
            computed_at = $10
        FROM tiered AS b
        WHERE b.stored AND cs.customer_id = b.customer_id
        RETURNING cs.customer_id, cs.store_id, b.previous_tier, cs.value_tier, cs.version,
                  cs.net_spend_365d, b.late
    ), created AS (
        INSERT INTO customer_score (customer_id, store_id, timezone, purchase_count,
                                    first_purchase_at, last_purchase_at, supply_runs_out_on,
                                    net_spend_365d, value_tier, version, computed_at)
        SELECT b.customer_id, b.store_id, b.timezone, b.purchases, b.first_at, b.last_at,
               b.runs_out, b.spend, b.tier, 1, $10
        FROM tiered AS b
        WHERE NOT b.stored
        ON CONFLICT (customer_id) DO NOTHING
        RETURNING customer_id, store_id, CAST(NULL AS text) AS previous_tier, value_tier,
                  version, net_spend_365d
    ), pushed AS (
        UPDATE customer_score AS cs
        SET value_tier = c.tier, version = cs.version + 1, computed_at = $10
        FROM crossed AS c
        WHERE cs.customer_id = c.customer_id AND c.previous_tier IS DISTINCT FROM c.tier
        RETURNING cs.customer_id, cs.store_id, c.previous_tier, cs.value_tier, cs.version,
                  cs.net_spend_365d
    ), moved AS (
        SELECT customer_id, store_id, previous_tier, value_tier, version, net_spend_365d
        FROM added WHERE previous_tier IS DISTINCT FROM value_tier
        UNION ALL SELECT * FROM created
        UNION ALL SELECT * FROM pushed
    ), {events.staging_sql("moved")}
    SELECT 'moved' AS kind, * FROM moved
    UNION ALL
    SELECT 'late', customer_id, NULL, NULL, NULL, NULL, NULL FROM added WHERE late
    UNION ALL
    SELECT 'missed', customer_id, NULL, NULL, NULL, NULL, NULL FROM batch
    WHERE customer_id NOT IN (SELECT customer_id FROM added UNION ALL
                              SELECT customer_id FROM created)
"""  # noqa: S608

# Aggregates rebuilt from all of their customers' stored purchases, set-based: what
# Aggregate.rebuild folds purchase by purchase, in one statement for any number of customers.
# The fold r = max(day, r) + supply, over the purchases in date order, unrolls to
# max over k of (day_k + supply bought from k on) = all supply + max over k of (day_k + supply_k
# - supply bought up to k): one running sum, no loop. A wholly refunded purchase (no days left)
# is no purchase: not counted, not dated, no k of the fold (scores/refund_facts.py). The time
# zone is the last purchase's (the row with no next one), ties broken by id bytewise as
# PurchaseSeen.date_order does; one window gives both. Only rows that differ are written (a
# store's recompute of correct aggregates writes nothing). {source} selects the facts; $2
# since, $3 now.
_REBUILD_SQL = """
    WITH facts AS (
        SELECT f.customer_id, f.purchased_at, f.purchased_on, f.timezone, f.total,
               f.supply_days, NOT f.wholly_refunded AS kept,
               sum(f.supply_days) OVER w AS supply_to_here,
               lead(f.purchase_id) OVER w IS NULL AS is_last,
               f.purchased_at > COALESCE($3::timestamptz - r.window_days * interval '24 hours', $2)
                   AS in_window
        FROM purchase_fact AS f
        LEFT JOIN store_tier_rules AS r ON r.store_id = f.store_id  -- its own window
        WHERE {source}
        WINDOW w AS (PARTITION BY f.customer_id
                     ORDER BY f.purchased_at, f.purchase_id COLLATE "C" ROWS UNBOUNDED PRECEDING)
    ), rebuilt AS (
        SELECT customer_id, min(timezone) FILTER (WHERE is_last) AS timezone,
               count(*) FILTER (WHERE kept) AS purchases,
               min(purchased_at) FILTER (WHERE kept) AS first_at,
               max(purchased_at) FILTER (WHERE kept) AS last_at,
               max(purchased_on + supply_days - CAST(supply_to_here AS integer))
                   FILTER (WHERE kept) + CAST(sum(supply_days) AS integer) AS runs_out,
               COALESCE(sum(total) FILTER (WHERE in_window), 0) AS spend
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
# A new file is a prospect, classified as the classification finds a file with no purchase
# (floating: scores/classify.py), so a plain registration needs no classification; it stages
# no score.changed: a file without a score is a prospect to crm.scores.v1's readers
# (deploy/README.md), and a score.changed per imported file cost scoring, the broker and the
# customer service's read copy more than the file's own row.
_INSERT_PROSPECTS_SQL = f"""
    INSERT INTO customer_score (customer_id, store_id, timezone, purchase_count,
                                net_spend_365d, value_tier, loyalty, version, computed_at)
    SELECT c, s, z, 0, 0, '{PROSPECT}', '{PROSPECT_LOYALTY}', 1, $4
    FROM unnest($1::text[], $2::text[], $3::text[]) AS t(c, s, z)
    ON CONFLICT (customer_id) DO NOTHING
"""  # noqa: S608

# A whole store's spend in the trailing window, in one statement (no list of its customers
# through Python), written only where it moved: a refresh of a store of a million customers
# rewrote every row each hour. $1 store, $2 since (the default window; the store's own replaces
# it), $3 now.
_WINDOW_SPEND_SQL = """
    UPDATE customer_score AS cs
    SET net_spend_365d = s.spend, computed_at = $3
    FROM (
        SELECT c.customer_id, COALESCE(SUM(f.total), 0) AS spend
        FROM customer_score AS c
        LEFT JOIN purchase_fact AS f ON f.customer_id = c.customer_id
            AND f.purchased_at > COALESCE(
                $3::timestamptz
                - (SELECT window_days FROM store_tier_rules WHERE store_id = $1)
                     * interval '24 hours',
                $2)
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
                    p.skus,
                    p.categories,
                    p.quantities,
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
    # Refunds that arrived before their purchase, applied to its fact under the store's lock
    # (an empty partial index to look in, in the normal run of things).
    refunded = await refund_facts.apply_due(db, [p.purchase_id for p in fresh])
    return changes + await _add_purchases(
        db, fresh, prepared=prepared, as_of=as_of, refunded=[c for c, _, _ in refunded]
    )


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
        [_array_literal(p.skus) for p in purchases],
        [_array_literal(p.categories) for p in purchases],
        [_array_literal(p.quantities) for p in purchases],
    )
    inserted = {r[0] for r in rows}
    fresh = []
    for p in purchases:
        if p.purchase_id in inserted:
            inserted.discard(p.purchase_id)  # the same purchase twice in one batch counts once
            fresh.append(p)
    return fresh, None


def _array_literal(values: Sequence[object]) -> str:
    """PostgreSQL's text of a one-dimensional array: every element quoted, NULL as NULL."""
    quoted = (
        "NULL" if v is None else '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
        for v in values
    )
    return "{" + ",".join(quoted) + "}"


async def _add_purchases(
    db: asyncpg.Connection,
    fresh: list[PurchaseSeen],
    *,
    prepared: PreparedPurchases | None,
    as_of: date | None,
    refunded: Sequence[str] = (),
) -> list[events.TierChange]:
    """Fold new purchases into their customers' aggregates and rank them in their stores.

    ``refunded``: customers whose facts a refund changed after the batch was folded; their
    aggregates are rebuilt from the facts. The caller holds the stores' locks."""
    if not fresh:
        return []
    now, since = window_start(as_of)
    # Supply carries over, so each customer's purchases fold in purchase-date order.
    folded = (prepared or PreparedPurchases.of(fresh)).folded
    stores = sorted({p.store_id for p in fresh})
    return await _add_folded(db, folded, stores, now=now, since=since, refunded=refunded)


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
    return await _add_folded(
        db, folded, stores, now=now, since=since, refunded=[c for c, _, _ in customers]
    )


async def _add_folded(
    db: asyncpg.Connection,
    folded: list[list[Any]],
    stores: list[str],
    *,
    now: datetime,
    since: datetime,
    refunded: Sequence[str],
) -> list[events.TierChange]:
    rows = await db.fetch(_ADD_BATCH_SQL, *folded, since, now, *bounds_parameters(stores))
    changes: list[events.TierChange] = []
    late: list[str] = []
    missed: list[str] = []
    for row in rows:
        if row[0] == "moved":
            changes.append(events.TierChange(*row[1:]))
        else:
            (late if row[0] == "late" else missed).append(row[1])
    if late or missed or refunded:  # rare (a back-dated purchase): one more statement
        await rebuild_aggregates(
            db, customer_ids=list(dict.fromkeys([*late, *missed, *refunded])), since=since, now=now
        )
    if missed:
        changes += await _rerank(db, stores, now=now)
    if refunded:
        changes += await refund_facts.unbought_to_prospects(db, refunded, now=now)
    return changes


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
    if customers:
        await db.execute(
            _INSERT_PROSPECTS_SQL,
            [c for c, _, _ in customers],
            [s for _, s, _ in customers],
            [z for _, _, z in customers],
            datetime.now(UTC),
        )
    return []


async def _rerank(
    db: asyncpg.Connection, store_ids: Iterable[str], *, now: datetime
) -> list[events.TierChange]:
    """Recompute the pyramid of the stores; stage an event for every customer whose tier moved.

    One statement for all of them. The caller holds the stores' locks."""
    stores = sorted(set(store_ids))
    if not stores:
        return []
    rows = await db.fetch(_RERANK_SQL, now, *bounds_parameters(stores))
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
