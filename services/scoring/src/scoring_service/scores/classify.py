"""DOMAIN.md §3's classifications beside the pyramid: member ladder (with a manager's floor),
loyalty, yearly lifecycle and RFM, for a batch's customers or a whole store, in one statement.

The statement reads each customer's aggregates (``customer_score``), member-event signals
(``customer_signal``), referred buyers (``customer_link`` → their scores) and repeat purchases
(``purchase_fact``), each as one grouped scan over the customers given, never a query per
customer; writes what changed; records every change of ladder or lifecycle in
``score_history`` and stages one ``score.changed`` per customer whose ladder or lifecycle
changed, carrying the previous and new values. Loyalty and RFM changes are written but not
published (no read copy keeps them, and recency moves daily). A row whose classification is
unchanged is not written at all (``classified_on`` is the day it last changed): a store's daily
ageing rewrote every row of a million-customer store for the few thousand that changed, and
the day a store was aged is ``store_ageing``'s (scores/scheduled.py).

Rules (the numbers come from :class:`~scoring_service.scores.thresholds.Thresholds`):

- ladder, the highest level that holds: ``A`` with enough referred customers whose first
  purchase fell within the window, ``B`` a referred customer who bought, ``C`` a guest brought
  to a member event (ever), ``D`` a member event attended within the window, ``E`` a second
  purchase, ``0`` bought; a file with no purchase has none. A manager's floor (``ladder_floor``)
  is a floor: the level is the higher of the two, the floor holding for a prospect too.
  ``ladder_score`` is 0, 20, … 100 along ``0 E D C B A``.
- loyalty: ``loyal`` with enough repeat purchases in the window, a repeat purchase being every
  purchase but the customer's first (scoring does not see products per purchase); else
  ``switcher`` when the file records competitors' products in use; else ``floating``.
- lifecycle, in the customer's store time zone, in DOMAIN.md's order: none without a purchase;
  ``lost`` when the last purchase's local day is ``lost_after_days`` or more before today;
  ``stopped`` when supply ran out more than ``stopped_after_days`` days ago; ``new_this_year``
  when the first purchase's local year is today's; ``active_core`` / ``active_second_line`` when
  the last purchase's local year is today's, with / without a member event attended this local
  year; else ``in_service_not_bought``.
- RFM: scores/rfm.py.

The caller holds the customers' stores' locks (:func:`store_locks.lock_stores`), as for a re-rank:
a classification and a re-rank of one store must not interleave their row locks.
"""

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import NamedTuple

import asyncpg
import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.driver import driver_connection
from scoring_service.scores import events, history, rfm
from scoring_service.scores.models import FLOATING
from scoring_service.scores.store_locks import lock_stores_on
from scoring_service.scores.thresholds import DEFAULT_THRESHOLDS, Thresholds

LADDER = ("0", "E", "D", "C", "B", "A")
LADDER_STEP = 20  # ladder_score of a level: its place along LADDER times this
IRON_CORE = "A"  # the only level a manager sets (API.md: {level: A, reason})

_LADDER_SQL = "ARRAY[" + ", ".join(f"'{level}'" for level in LADDER) + "]"


class Classified(msgspec.Struct, frozen=True, gc=False):
    """A customer whose ladder or lifecycle changed (and was published)."""

    customer_id: str
    store_id: str
    previous_ladder_level: str | None
    ladder_level: str | None
    previous_lifecycle: str | None
    lifecycle: str | None
    version: int
    cause: str


class Inputs(NamedTuple):
    """The SQL (parameter references) of what :func:`classification_sql` reads besides rows."""

    now: str
    fresh: str  # whether to compute the stores' RFM boundaries afresh
    event_window: str
    iron_referred: str
    iron_window: str
    loyal_repeat: str
    loyal_window: str


# Thresholds in field order (threshold_params) from $5: lost and stopped are read by ``cur``.
_INPUTS = Inputs("$3", "$4", "$7", "$8", "$9", "$10", "$11")


def bought_sql(p: Inputs, facts: str = "pf") -> str:
    """The aggregate counting the purchases of the loyalty window among ``facts``' rows (a
    wholly refunded one is no purchase any more: scores/refund_facts.py)."""
    return (
        f"count(*) FILTER (WHERE {facts}.purchased_at"
        f" > {p.now} - make_interval(months => {p.loyal_window}) AND NOT {facts}.wholly_refunded)"
    )


def classification_sql(
    p: Inputs, *, scores: str = "customer_score", bought: str | None = None
) -> str:
    """CTEs (to follow a ``WITH`` and a comma) computing the classification of every row of a
    CTE named ``cur``: ``customer_score``'s columns as they are to be (the aggregates after
    the batch), with ``cause``, ``today``, ``lost_after`` and ``stopped_after``. They end in
    ``classified``: per customer the new values, ``published`` (ladder or lifecycle changed),
    ``restated`` (loyalty, ladder score or RFM changed), ``new_buyer`` and ``fresh`` (the store's
    RFM boundaries computed by this statement). ``scores`` is the FROM item the boundaries are
    cut from, ``customer_score`` as the statement will leave it (columns ``store_id``,
    ``purchase_count``, ``last_purchase_at``, ``net_spend_365d``). ``bought``: an earlier CTE
    with each customer's ``purchases`` in the loyalty window (:func:`bought_sql`'s count),
    where the statement counted them already, else they are counted here. Only constants and
    parameter references are interpolated; ``saved`` writes ``rfm_bound``."""
    counted = (
        ""
        if bought
        else f"""
    ), bought AS (
        SELECT pf.customer_id, {bought_sql(p)} AS purchases
        FROM purchase_fact AS pf
        WHERE pf.customer_id IN (SELECT customer_id FROM cur)
          AND pf.purchased_at > {p.now} - make_interval(months => {p.loyal_window})
        GROUP BY pf.customer_id"""  # noqa: S608
    )
    return f"""
    signals AS (
        SELECT s.customer_id,
               max(s.occurred_at) FILTER (WHERE s.kind = 'attended') AS attended_at,
               bool_or(s.kind = 'guest_brought') AS brought_guest
        FROM customer_signal AS s
        WHERE s.customer_id IN (SELECT customer_id FROM cur)
        GROUP BY s.customer_id
    ), referred AS (
        SELECT l.referrer_id AS customer_id, count(*) AS buyers,
               count(*) FILTER (
                   WHERE r.first_purchase_at
                         > {p.now} - make_interval(months => {p.iron_window})) AS recent
        FROM customer_link AS l JOIN customer_score AS r ON r.customer_id = l.customer_id
        WHERE l.referrer_id IN (SELECT customer_id FROM cur) AND r.purchase_count > 0
        GROUP BY l.referrer_id
{counted}
    ), stores AS (
        SELECT DISTINCT store_id FROM cur
    ), arriving AS (
        SELECT store_id, count(*) AS n FROM cur
        WHERE rfm_r IS NULL AND purchase_count > 0
        GROUP BY store_id
    ), due AS (
        SELECT s.store_id FROM stores AS s
        LEFT JOIN rfm_bound AS b USING (store_id)
        LEFT JOIN arriving AS a USING (store_id)
        WHERE {p.fresh}::boolean OR b.store_id IS NULL OR b.buyers < {rfm.MIN_BUYERS}
           OR (b.new_buyers + COALESCE(a.n, 0)) * {rfm.REGROW_SHARE} > b.buyers
    ), cut AS (
        SELECT store_id, count(*) AS buyers,
               {rfm.cut_sql("last_purchase_at")} AS recency,
               {rfm.cut_sql("purchase_count")} AS frequency,
               {rfm.cut_sql("net_spend_365d")} AS monetary
        FROM {scores}
        WHERE store_id IN (SELECT store_id FROM due) AND purchase_count > 0
        GROUP BY store_id
    ), saved AS (
        INSERT INTO rfm_bound (store_id, computed_at, buyers, new_buyers, recency, frequency,
                               monetary)
        SELECT store_id, {p.now}, buyers, 0, recency, frequency, monetary FROM cut
        ON CONFLICT (store_id) DO UPDATE SET
            computed_at = excluded.computed_at, buyers = excluded.buyers, new_buyers = 0,
            recency = excluded.recency, frequency = excluded.frequency,
            monetary = excluded.monetary
    ), bounds AS (
        SELECT store_id, buyers, recency, frequency, monetary, true AS fresh FROM cut
        UNION ALL
        SELECT b.store_id, b.buyers, b.recency, b.frequency, b.monetary, false
        FROM rfm_bound AS b
        WHERE b.store_id IN (SELECT store_id FROM stores)
          AND b.store_id NOT IN (SELECT store_id FROM cut)
    ), earned AS (
        SELECT c.*, rb.fresh,
               -- Quintiles of fewer buyers than quintiles are no quintiles (scores/rfm.py).
               CASE WHEN rb.buyers >= {rfm.MIN_BUYERS} THEN rb.recency END AS recency,
               CASE WHEN rb.buyers >= {rfm.MIN_BUYERS} THEN rb.frequency END AS frequency,
               CASE WHEN rb.buyers >= {rfm.MIN_BUYERS} THEN rb.monetary END AS monetary,
               CASE WHEN c.purchase_count = 0 THEN NULL
                    WHEN COALESCE(rf.recent, 0) >= {p.iron_referred} THEN 'A'
                    WHEN COALESCE(rf.buyers, 0) > 0 THEN 'B'
                    WHEN sg.brought_guest THEN 'C'
                    WHEN sg.attended_at > {p.now} - make_interval(months => {p.event_window})
                    THEN 'D'
                    WHEN c.purchase_count >= 2 THEN 'E'
                    ELSE '0'
               END AS earned_level,
               CASE WHEN COALESCE(bt.purchases, 0)
                         - CAST(c.first_purchase_at
                                > {p.now} - make_interval(months => {p.loyal_window})
                                AS integer)
                         >= {p.loyal_repeat} THEN 'loyal'
                    WHEN ln.uses_competitor THEN 'switcher'
                    ELSE '{FLOATING}'
               END AS new_loyalty,
               CASE WHEN c.purchase_count = 0 OR c.last_purchase_at IS NULL THEN NULL
                    WHEN c.today - CAST(c.last_purchase_at AT TIME ZONE c.timezone AS date)
                         >= c.lost_after THEN 'lost'
                    WHEN c.today - COALESCE(c.supply_runs_out_on,
                                            CAST(c.last_purchase_at AT TIME ZONE c.timezone
                                                 AS date)) > c.stopped_after THEN 'stopped'
                    WHEN extract(year FROM c.first_purchase_at AT TIME ZONE c.timezone)
                         = extract(year FROM c.today) THEN 'new_this_year'
                    WHEN extract(year FROM c.last_purchase_at AT TIME ZONE c.timezone)
                         = extract(year FROM c.today)
                    THEN CASE WHEN extract(year FROM sg.attended_at AT TIME ZONE c.timezone)
                                   = extract(year FROM c.today)
                              THEN 'active_core' ELSE 'active_second_line' END
                    ELSE 'in_service_not_bought'
               END AS new_lifecycle
        FROM cur AS c
        LEFT JOIN signals AS sg USING (customer_id)
        LEFT JOIN referred AS rf USING (customer_id)
        LEFT JOIN {bought or "bought"} AS bt USING (customer_id)
        LEFT JOIN customer_link AS ln USING (customer_id)
        LEFT JOIN bounds AS rb ON rb.store_id = c.store_id
    ), leveled AS (
        SELECT e.*,
               CASE WHEN COALESCE(array_position({_LADDER_SQL}, e.ladder_floor), 0)
                         > COALESCE(array_position({_LADDER_SQL}, e.earned_level), 0)
                    THEN e.ladder_floor ELSE e.earned_level END AS new_level,
               CASE WHEN e.purchase_count = 0 OR e.recency IS NULL THEN NULL
                    ELSE {rfm.score_sql("e.last_purchase_at", "e.recency")} END AS r,
               CASE WHEN e.purchase_count = 0 OR e.frequency IS NULL THEN NULL
                    ELSE {rfm.score_sql("e.purchase_count", "e.frequency")} END AS f,
               CASE WHEN e.purchase_count = 0 OR e.monetary IS NULL THEN NULL
                    ELSE {rfm.score_sql("e.net_spend_365d", "e.monetary")} END AS m
        FROM earned AS e
    ), classified AS (
        SELECT l.customer_id, l.store_id, l.cause, l.today, l.fresh,
               l.ladder_level AS previous_ladder_level, l.new_level,
               (array_position({_LADDER_SQL}, l.new_level) - 1) * {LADDER_STEP} AS new_score,
               l.lifecycle AS previous_lifecycle, l.new_lifecycle, l.new_loyalty,
               l.r, l.f, l.m,
               ({rfm.SEGMENT_GRID_SQL})[(l.r - 1) * 5 + l.f] AS segment,
               l.rfm_r IS NULL AND l.r IS NOT NULL AS new_buyer,
               (l.ladder_level IS DISTINCT FROM l.new_level
                OR l.lifecycle IS DISTINCT FROM l.new_lifecycle) AS published,
               (l.loyalty IS DISTINCT FROM l.new_loyalty
                OR l.ladder_score IS DISTINCT FROM
                   (array_position({_LADDER_SQL}, l.new_level) - 1) * {LADDER_STEP}
                OR l.rfm_r IS DISTINCT FROM l.r OR l.rfm_f IS DISTINCT FROM l.f
                OR l.rfm_m IS DISTINCT FROM l.m) AS restated
        FROM leveled AS l
    )
    """  # noqa: S608


# Only constants are interpolated (CTE sources of this module, rfm.py's SQL, level names).
# $1/$2 the batch (see _BY_IDS / _BY_STORE), $3 now, $4 whether to compute the stores' RFM
# boundaries afresh, $5.. Thresholds in field order (threshold_params).
def _classify_sql(batch: str) -> str:
    return f"""
    WITH {batch},
    cur AS (
        SELECT cs.*, b.cause, CAST($3::timestamptz AT TIME ZONE cs.timezone AS date) AS today,
               -- the store's own lifecycle thresholds (scores/tier_rules.py), else $5, $6
               COALESCE(tr.lost_after_days, $5) AS lost_after,
               COALESCE(tr.stopped_after_days, $6) AS stopped_after
        FROM customer_score AS cs JOIN batch AS b USING (customer_id)
        LEFT JOIN store_tier_rules AS tr ON tr.store_id = cs.store_id
    ), {classification_sql(_INPUTS)},
    changed AS (
        UPDATE customer_score AS cs SET
            ladder_level = k.new_level, ladder_score = k.new_score, loyalty = k.new_loyalty,
            lifecycle = k.new_lifecycle, rfm_r = k.r, rfm_f = k.f, rfm_m = k.m,
            rfm_segment = k.segment, classified_on = k.today,
            version = cs.version + CAST(k.published AS integer),
            computed_at = CASE WHEN k.published THEN $3 ELSE cs.computed_at END
        FROM classified AS k
        WHERE cs.customer_id = k.customer_id AND (k.published OR k.restated)
        RETURNING cs.customer_id, cs.store_id, cs.value_tier, cs.value_tier AS previous_tier,
                  cs.version, cs.net_spend_365d, cs.ladder_level, k.previous_ladder_level,
                  cs.ladder_score, cs.lifecycle, k.previous_lifecycle, k.cause, k.published,
                  k.new_buyer, k.fresh, cs.supply_runs_out_on, cs.expected_purchase_on
    ), published AS (
        SELECT * FROM changed WHERE published
    ), classified_history AS (
        INSERT INTO score_history (customer_id, store_id, field, previous, value, cause)
        SELECT customer_id, store_id, 'ladder_level', previous_ladder_level, ladder_level, cause
        FROM published WHERE previous_ladder_level IS DISTINCT FROM ladder_level
        UNION ALL
        SELECT customer_id, store_id, 'lifecycle', previous_lifecycle, lifecycle, cause
        FROM published WHERE previous_lifecycle IS DISTINCT FROM lifecycle
    ), grown AS (
        UPDATE rfm_bound AS b SET new_buyers = b.new_buyers + g.n
        FROM (SELECT store_id, count(*) AS n FROM changed WHERE new_buyer AND NOT fresh
              GROUP BY store_id) AS g
        WHERE b.store_id = g.store_id
    ), {events.staging_sql("published", classified=True)}
    SELECT customer_id, store_id, previous_ladder_level, ladder_level, previous_lifecycle,
           lifecycle, version, cause
    FROM published
    """  # noqa: S608


# The customers given, and their referrers: a referred file's purchases make its referrer's
# ladder (B, A).
_BY_IDS = f"""
    given AS (SELECT * FROM unnest($1::text[], $2::text[]) AS g(customer_id, cause)),
    batch AS (
        SELECT customer_id, cause FROM given
        UNION ALL
        SELECT DISTINCT l.referrer_id, '{history.REFERRAL}' FROM customer_link AS l
        WHERE l.customer_id IN (SELECT customer_id FROM given) AND l.referrer_id IS NOT NULL
          AND l.referrer_id NOT IN (SELECT customer_id FROM given)
    )
"""  # noqa: S608
_BY_STORE = """
    batch AS (
        SELECT customer_id, CAST($2 AS text) AS cause FROM customer_score
        WHERE store_id = $1::text
    )
"""
_CLASSIFY_IDS_SQL = _classify_sql(_BY_IDS)
_CLASSIFY_STORE_SQL = _classify_sql(_BY_STORE)


def threshold_params(thresholds: Thresholds) -> list[int]:
    """The thresholds as the statements' parameters, in field order."""
    t = thresholds
    return [
        t.lost_after_days,
        t.stopped_after_days,
        t.event_window_months,
        t.iron_core_referred_buyers,
        t.iron_core_window_months,
        t.loyal_repeat_purchases,
        t.loyal_window_months,
    ]


async def _driver(db: AsyncSession | asyncpg.Connection) -> asyncpg.Connection:
    return await driver_connection(db) if isinstance(db, AsyncSession) else db


async def classify_customers(
    db: AsyncSession | asyncpg.Connection,
    *,
    customer_ids: Iterable[str],
    now: datetime,
    cause: str,
    causes: Mapping[str, str] | None = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> list[Classified]:
    """Classify these customers as of ``now``; returns those whose ladder or lifecycle changed.

    ``cause`` is recorded for each change, or ``causes[customer_id]`` where given. Their
    referrers are classified too (cause ``referral``). The RFM boundaries of their stores are
    used as kept, computed afresh first where a store has none or has grown by a quarter. The
    caller holds the stores' locks."""
    ids = list(dict.fromkeys(customer_ids))
    if not ids:
        return []
    given = causes or {}
    rows = await (await _driver(db)).fetch(
        _CLASSIFY_IDS_SQL,
        ids,
        [given.get(c, cause) for c in ids],
        now,
        False,
        *threshold_params(thresholds),
    )
    return [Classified(**r) for r in rows]


async def classify_store(
    db: AsyncSession | asyncpg.Connection,
    *,
    store_id: str,
    now: datetime,
    cause: str,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> int:
    """Recompute everything time-driven of a whole store as of ``now`` (its RFM boundaries
    included); returns how many customers' ladder or lifecycle changed. Takes the store's lock."""
    driver = await _driver(db)
    await lock_stores_on(driver, [store_id])
    rows = await driver.fetch(
        _CLASSIFY_STORE_SQL, store_id, cause, now, True, *threshold_params(thresholds)
    )
    return len(rows)
