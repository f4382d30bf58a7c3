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
from scoring_service.scores.rebuild import rebuild_aggregates
from scoring_service.scores.rerank import rerank
from scoring_service.scores.thresholds import DEFAULT_THRESHOLDS
from scoring_service.scores.tiers import (
    PROSPECT,
    TIERS,
    bounds_parameters,
    bounds_sql,
    threshold_case_sql,
)


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
#
# Classifying (_ADD_CLASSIFY_SQL, the consumer's batches): the classification's CTEs
# (classify.classification_sql) read the batch's rows as the add leaves them (``cur``), and the
# same UPDATE or INSERT writes aggregates, tier, ladder, loyalty, lifecycle and RFM: one row
# version per customer, where adding and then classifying wrote two (and eight index entries
# each). One score.changed per customer carries whatever of tier, ladder and lifecycle moved,
# and one INSERT writes the history of all three. The RFM boundaries a store is due for are cut
# from its rows as the statement leaves them (everyone else's stored, the batch's added). Not
# classified here, and returned to be classified after the rebuild: the back-dated ('late'),
# the refunded ($22) and the missed; and the referrers of the batch's customers ('referrer'),
# whose ladder counts referred buyers. Returns one 'moved' row with the number of tiers that
# moved rather than the changes. $15.. the thresholds (classify.threshold_params), $22 the
# customers not to classify.
_CLASSIFY_FROM = 11 + 1 + len(TIERS)  # the thresholds' first parameter, after the bounds'
_LOST, _STOPPED, _EVENTS, _REFERRED, _IRON, _REPEAT, _LOYAL, _DEFERRED = (
    f"${_CLASSIFY_FROM + i}" for i in range(8)
)
_INPUTS = classify.Inputs("$10", "false", _EVENTS, _REFERRED, _IRON, _REPEAT, _LOYAL)
# What a store's RFM boundaries are cut from: its rows as this statement leaves them.
_SCORES_AFTER = """(
    SELECT store_id, purchase_count, last_purchase_at, net_spend_365d FROM customer_score
    WHERE customer_id NOT IN (SELECT customer_id FROM batch)
    UNION ALL
    SELECT store_id, COALESCE(stored_count, 0) + purchases, GREATEST(stored_last, last_at), spend
    FROM tiered
) AS after_batch"""
# The stored values the classification reads, carried from ``batch`` (no second read).
_STORED_SQL = """,
               cs.purchase_count AS stored_count, cs.first_purchase_at AS stored_first,
               cs.last_purchase_at AS stored_last, cs.supply_runs_out_on AS stored_runs_out,
               cs.ladder_floor, cs.ladder_level, cs.ladder_score, cs.loyalty, cs.lifecycle,
               cs.rfm_r, cs.rfm_f, cs.rfm_m, cs.expected_purchase_on AS stored_expected,
               cs.announced_runs_out_on AS stored_announced"""
_CLASSIFIED_SQL = f"""
    cur AS (
        SELECT t.customer_id, t.store_id, t.timezone,
               COALESCE(t.stored_count, 0) + t.purchases AS purchase_count,
               LEAST(t.stored_first, t.first_at) AS first_purchase_at,
               GREATEST(t.stored_last, t.last_at) AS last_purchase_at,
               GREATEST(t.stored_runs_out + t.supply_days, t.runs_out) AS supply_runs_out_on,
               t.spend AS net_spend_365d, t.ladder_floor, t.ladder_level, t.ladder_score,
               t.loyalty, t.lifecycle, t.rfm_r, t.rfm_f, t.rfm_m, '{history.PURCHASE}' AS cause,
               CAST($10::timestamptz AT TIME ZONE t.timezone AS date) AS today,
               -- the store's own lifecycle thresholds (scores/tier_rules.py), else the defaults
               COALESCE(tr.lost_after_days, {_LOST}) AS lost_after,
               COALESCE(tr.stopped_after_days, {_STOPPED}) AS stopped_after
        FROM tiered AS t LEFT JOIN store_tier_rules AS tr ON tr.store_id = t.store_id
        WHERE NOT t.late AND t.customer_id <> ALL({_DEFERRED}::text[])
    ), {classify.classification_sql(_INPUTS, scores=_SCORES_AFTER, bought="spent")},
    dates AS (
        SELECT t.customer_id, d.new_runs_out,
               {
    expected_dates.expected_sql(
        store="t.store_id", runs_out="d.new_runs_out", timezone="t.timezone", today="k.today"
    )
} AS new_expected
        FROM tiered AS t JOIN classified AS k USING (customer_id)
        -- aggregates.added_runs_out, as ``added`` writes it
        CROSS JOIN LATERAL (
            SELECT GREATEST(t.stored_runs_out + t.supply_days, t.runs_out) AS new_runs_out
        ) AS d
    ), written AS (
        SELECT t.*, k.customer_id IS NOT NULL AS classifies, k.new_level, k.new_score,
               k.new_loyalty, k.new_lifecycle, k.r, k.f, k.m, k.segment, k.today,
               COALESCE(k.published, false) AS published,
               COALESCE(k.published OR k.restated, false) AS reclassified,
               d.new_runs_out, d.new_expected,
               -- dates moved from those last published (scores/expected_dates.py)
               COALESCE(d.new_expected IS DISTINCT FROM t.stored_expected
                        OR d.new_runs_out IS DISTINCT FROM t.stored_announced, false) AS dated
        FROM tiered AS t LEFT JOIN classified AS k USING (customer_id)
        LEFT JOIN dates AS d USING (customer_id)
    ),"""  # noqa: S608
_KEPT_UNLESS_CLASSIFIED = {
    "ladder_level": "new_level",
    "ladder_score": "new_score",
    "loyalty": "new_loyalty",
    "lifecycle": "new_lifecycle",
    "rfm_r": "r",
    "rfm_f": "f",
    "rfm_m": "m",
    "rfm_segment": "segment",
    "expected_purchase_on": "new_expected",
    "announced_runs_out_on": "new_runs_out",
}
_CLASSIFIED_SET_SQL = "".join(
    f"{column} = CASE WHEN b.classifies THEN b.{new} ELSE cs.{column} END, "
    for column, new in _KEPT_UNLESS_CLASSIFIED.items()
)
# What every announced row carries beyond events.TierChange's columns.
_ANNOUNCED_SQL = f"""
    announced AS (
        SELECT customer_id, store_id, previous_tier, value_tier, version, net_spend_365d,
               ladder_level, previous_ladder_level, ladder_score, lifecycle, previous_lifecycle,
               '{history.PURCHASE}' AS cause, supply_runs_out_on, expected_purchase_on
        FROM added
        WHERE previous_tier IS DISTINCT FROM value_tier
           OR previous_ladder_level IS DISTINCT FROM ladder_level
           OR previous_lifecycle IS DISTINCT FROM lifecycle
           OR dated
        UNION ALL
        SELECT customer_id, store_id, previous_tier, value_tier, version, net_spend_365d,
               ladder_level, NULL, ladder_score, lifecycle, NULL, '{history.PURCHASE}',
               supply_runs_out_on, expected_purchase_on
        FROM created
        UNION ALL
        SELECT customer_id, store_id, previous_tier, value_tier, version, net_spend_365d,
               ladder_level, ladder_level, ladder_score, lifecycle, lifecycle,
               COALESCE({history.DECLARED_CAUSE_SQL}, '{history.RANK_MOVED}'),
               supply_runs_out_on, expected_purchase_on
        FROM pushed
    ), {events.staging_sql("announced", classified=True)},
    recorded AS (
        INSERT INTO score_history (customer_id, store_id, field, previous, value, cause)
        SELECT customer_id, store_id, 'value_tier', previous_tier, value_tier, cause
        FROM announced
        WHERE previous_tier IS DISTINCT FROM value_tier
          AND NOT (previous_tier IS NULL AND value_tier = '{PROSPECT}')
        UNION ALL
        SELECT customer_id, store_id, 'ladder_level', previous_ladder_level, ladder_level, cause
        FROM announced WHERE previous_ladder_level IS DISTINCT FROM ladder_level
        UNION ALL
        SELECT customer_id, store_id, 'lifecycle', previous_lifecycle, lifecycle, cause
        FROM announced WHERE previous_lifecycle IS DISTINCT FROM lifecycle
    ), grown AS (
        UPDATE rfm_bound AS rb SET new_buyers = rb.new_buyers + g.n
        FROM (SELECT store_id, count(*) AS n FROM classified
              WHERE new_buyer AND NOT fresh
                AND customer_id IN (SELECT customer_id FROM added
                                    UNION ALL SELECT customer_id FROM created)
              GROUP BY store_id) AS g
        WHERE rb.store_id = g.store_id
    )"""  # noqa: S608


# The window is the store's own where it set one (scores/tier_rules.py), else $9's.
_WINDOW_START_SQL = "COALESCE($10::timestamptz - r.window_days * interval '24 hours', $9)"
_SPENT_SQL = f"""
    spent AS (
        SELECT f.customer_id, SUM(f.total) AS spend
        FROM purchase_fact AS f LEFT JOIN store_tier_rules AS r ON r.store_id = f.store_id
        WHERE f.customer_id = ANY($1::text[]) AND f.purchased_at > {_WINDOW_START_SQL}
        GROUP BY f.customer_id
    )"""  # noqa: S608
# Classifying, the same scan of the batch's facts also counts the purchases the loyalty reads
# (over its own window, usually the longer): purchase_fact is read once for both.
_SPENT_CLASSIFYING_SQL = f"""
    spent AS (
        SELECT f.customer_id,
               SUM(f.total) FILTER (WHERE f.purchased_at > {_WINDOW_START_SQL}) AS spend,
               {classify.bought_sql(_INPUTS, "f")} AS purchases
        FROM purchase_fact AS f LEFT JOIN store_tier_rules AS r ON r.store_id = f.store_id
        WHERE f.customer_id = ANY($1::text[])
          AND f.purchased_at > LEAST({_WINDOW_START_SQL},
                                     $10 - make_interval(months => {_LOYAL}))
        GROUP BY f.customer_id
    )"""  # noqa: S608


def _add_batch_sql(*, classifying: bool) -> str:
    """The add statement; ``classifying``: with the batch's classification (see above)."""
    stored = _STORED_SQL if classifying else ""
    source = "written" if classifying else "tiered"
    classified_set = _CLASSIFIED_SET_SQL if classifying else ""
    version_moved = (
        "cs.value_tier IS DISTINCT FROM b.tier OR b.published OR b.dated"
        if classifying
        else "cs.value_tier IS DISTINCT FROM b.tier"
    )
    if classifying:
        returned_added = """,
                  cs.ladder_level, b.ladder_level AS previous_ladder_level, cs.ladder_score,
                  cs.lifecycle, b.lifecycle AS previous_lifecycle, cs.supply_runs_out_on,
                  cs.expected_purchase_on, b.dated"""
        created_columns = """, ladder_level, ladder_score, loyalty,
                                    lifecycle, rfm_r, rfm_f, rfm_m, rfm_segment, classified_on,
                                    expected_purchase_on, announced_runs_out_on"""
        created_values = """, b.new_level, b.new_score, b.new_loyalty,
               b.new_lifecycle, b.r, b.f, b.m, b.segment,
               CASE WHEN b.reclassified THEN b.today END, b.new_expected, b.new_runs_out"""
        returned_created = (
            ", ladder_level, ladder_score, lifecycle, supply_runs_out_on, expected_purchase_on"
        )
        returned_pushed = (
            ", cs.ladder_level, cs.ladder_score, cs.lifecycle, cs.supply_runs_out_on,"
            " cs.expected_purchase_on"
        )
        classified_on = (
            "classified_on = CASE WHEN b.reclassified THEN b.today ELSE cs.classified_on END,"
        )
        staging = _ANNOUNCED_SQL
        reported = """
    SELECT 'moved' AS kind, CAST(count(*) AS text), NULL, NULL, NULL, NULL, NULL FROM moved
    UNION ALL
    SELECT DISTINCT 'referrer', l.referrer_id, NULL, NULL, NULL, NULL, NULL
    FROM customer_link AS l
    WHERE l.customer_id IN (SELECT customer_id FROM batch) AND l.referrer_id IS NOT NULL"""
    else:
        returned_added = created_columns = created_values = ""
        returned_created = returned_pushed = classified_on = ""
        staging = events.staging_sql("moved")
        reported = """
    SELECT 'moved' AS kind, * FROM moved"""
    return f"""
    WITH {_SPENT_CLASSIFYING_SQL if classifying else _SPENT_SQL}, batch AS (
        SELECT b.customer_id, COALESCE(cs.store_id, b.store_id) AS store_id, b.timezone,
               b.purchases, b.first_at, b.last_at, b.runs_out, b.supply_days,
               COALESCE(s.spend, 0) AS spend, cs.customer_id IS NOT NULL AS stored,
               COALESCE(cs.last_purchase_at > b.first_at, false) AS late,
               cs.value_tier AS previous_tier,
               COALESCE(cs.net_spend_365d, 0) AS previous_spend{stored}
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
    ),{_CLASSIFIED_SQL if classifying else ""} added AS (
        UPDATE customer_score AS cs SET
            timezone = b.timezone,
            purchase_count = cs.purchase_count + b.purchases,
            first_purchase_at = LEAST(cs.first_purchase_at, b.first_at),
            last_purchase_at = GREATEST(cs.last_purchase_at, b.last_at),
            -- aggregates.added_runs_out
            supply_runs_out_on = GREATEST(cs.supply_runs_out_on + b.supply_days, b.runs_out),
            net_spend_365d = b.spend,
            value_tier = b.tier, {classified_set}{classified_on}
            version = cs.version + CASE WHEN {version_moved} THEN 1 ELSE 0 END,
            computed_at = $10
        FROM {source} AS b
        WHERE b.stored AND cs.customer_id = b.customer_id
        RETURNING cs.customer_id, cs.store_id, b.previous_tier, cs.value_tier, cs.version,
                  cs.net_spend_365d, b.late{returned_added}
    ), created AS (
        INSERT INTO customer_score (customer_id, store_id, timezone, purchase_count,
                                    first_purchase_at, last_purchase_at, supply_runs_out_on,
                                    net_spend_365d, value_tier, version,
                                    computed_at{created_columns})
        SELECT b.customer_id, b.store_id, b.timezone, b.purchases, b.first_at, b.last_at,
               b.runs_out, b.spend, b.tier, 1, $10{created_values}
        FROM {source} AS b
        WHERE NOT b.stored
        ON CONFLICT (customer_id) DO NOTHING
        RETURNING customer_id, store_id, CAST(NULL AS text) AS previous_tier, value_tier,
                  version, net_spend_365d{returned_created}
    ), pushed AS (
        UPDATE customer_score AS cs
        SET value_tier = c.tier, version = cs.version + 1, computed_at = $10
        FROM crossed AS c
        WHERE cs.customer_id = c.customer_id AND c.previous_tier IS DISTINCT FROM c.tier
        RETURNING cs.customer_id, cs.store_id, c.previous_tier, cs.value_tier, cs.version,
                  cs.net_spend_365d{returned_pushed}
    ), moved AS (
        SELECT customer_id, store_id, previous_tier, value_tier, version, net_spend_365d
        FROM added WHERE previous_tier IS DISTINCT FROM value_tier
        UNION ALL SELECT customer_id, store_id, previous_tier, value_tier, version,
                         net_spend_365d FROM created
        UNION ALL SELECT customer_id, store_id, previous_tier, value_tier, version,
                         net_spend_365d FROM pushed
    ), {staging}{reported}
    UNION ALL
    SELECT 'late', customer_id, NULL, NULL, NULL, NULL, NULL FROM added WHERE late
    UNION ALL
    SELECT 'missed', customer_id, NULL, NULL, NULL, NULL, NULL FROM batch
    WHERE customer_id NOT IN (SELECT customer_id FROM added UNION ALL
                              SELECT customer_id FROM created)
"""  # noqa: S608


_ADD_BATCH_SQL = _add_batch_sql(classifying=False)
_ADD_CLASSIFY_SQL = _add_batch_sql(classifying=True)


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
    rows = await db.fetch(_ADD_BATCH_SQL, *folded, since, now, *bounds_parameters(stores))
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
        _ADD_CLASSIFY_SQL,
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
