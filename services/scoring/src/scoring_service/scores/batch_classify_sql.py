"""The classifying parts of the batch add's statement (scores/batch_add_sql.py): the batch's
customers classified, and their score.changed and history, in the statement that adds them."""

from scoring_service.scores import classify, events, expected_dates, history
from scoring_service.scores.tiers import PROSPECT, TIERS

# Classifying (batch_add_sql.ADD_CLASSIFY_SQL, the consumer's batches): the classification's CTEs
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
_LOST, _STOPPED, _EVENTS, _REFERRED, _IRON, _REPEAT, LOYAL, _DEFERRED = (
    f"${_CLASSIFY_FROM + i}" for i in range(8)
)
CLASSIFY_INPUTS = classify.Inputs("$10", "false", _EVENTS, _REFERRED, _IRON, _REPEAT, LOYAL)
# What a store's RFM boundaries are cut from: its rows as this statement leaves them.
_SCORES_AFTER = """(
    SELECT store_id, purchase_count, last_purchase_at, net_spend_365d FROM customer_score
    WHERE customer_id NOT IN (SELECT customer_id FROM batch)
    UNION ALL
    SELECT store_id, COALESCE(stored_count, 0) + purchases, GREATEST(stored_last, last_at), spend
    FROM tiered
) AS after_batch"""
# The stored values the classification reads, carried from ``batch`` (no second read).
STORED_SQL = """,
               cs.purchase_count AS stored_count, cs.first_purchase_at AS stored_first,
               cs.last_purchase_at AS stored_last, cs.supply_runs_out_on AS stored_runs_out,
               cs.ladder_floor, cs.ladder_level, cs.ladder_score, cs.loyalty, cs.lifecycle,
               cs.rfm_r, cs.rfm_f, cs.rfm_m, cs.expected_purchase_on AS stored_expected,
               cs.announced_runs_out_on AS stored_announced"""
CLASSIFIED_SQL = f"""
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
    ), {classify.classification_sql(CLASSIFY_INPUTS, scores=_SCORES_AFTER, bought="spent")},
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
CLASSIFIED_SET_SQL = "".join(
    f"{column} = CASE WHEN b.classifies THEN b.{new} ELSE cs.{column} END, "
    for column, new in _KEPT_UNLESS_CLASSIFIED.items()
)
# What every announced row carries beyond events.TierChange's columns.
ANNOUNCED_SQL = f"""
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
