"""The text of the batch add's one statement (scores/batch_add.py binds it): the batch added to
the aggregates and ranked, and with ``classifying`` classified too (scores/batch_classify_sql.py).
"""

from scoring_service.scores import classify, events
from scoring_service.scores.batch_classify_sql import (
    ANNOUNCED_SQL,
    CLASSIFIED_SET_SQL,
    CLASSIFIED_SQL,
    CLASSIFY_INPUTS,
    LOYAL,
    STORED_SQL,
)
from scoring_service.scores.tiers import TIERS, bounds_sql, threshold_case_sql


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
               {classify.bought_sql(CLASSIFY_INPUTS, "f")} AS purchases
        FROM purchase_fact AS f LEFT JOIN store_tier_rules AS r ON r.store_id = f.store_id
        WHERE f.customer_id = ANY($1::text[])
          AND f.purchased_at > LEAST({_WINDOW_START_SQL},
                                     $10 - make_interval(months => {LOYAL}))
        GROUP BY f.customer_id
    )"""  # noqa: S608


def _add_batch_sql(*, classifying: bool) -> str:
    """The add statement; ``classifying``: with the batch's classification (see above)."""
    stored = STORED_SQL if classifying else ""
    source = "written" if classifying else "tiered"
    classified_set = CLASSIFIED_SET_SQL if classifying else ""
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
        staging = ANNOUNCED_SQL
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
    ),{CLASSIFIED_SQL if classifying else ""} added AS (
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


ADD_BATCH_SQL = _add_batch_sql(classifying=False)
ADD_CLASSIFY_SQL = _add_batch_sql(classifying=True)
