"""Churn per year (DOMAIN.md §10): how many of a store's customers were lost and how many had
stopped by the year's end, and their rates.

Each customer's lifecycle is judged as of the year's last day (today for the current year) with
the store's thresholds (``GET /stores/{id}/tier-rules``, DOMAIN.md §3's 730 and 30 days by
default), from the purchase facts up to that day, exactly as the daily classification would
have judged it then:

- ``lost``: the last purchase is ``lost_after_days`` or more before that day;
- ``stopped`` (not lost): the supply ran out more than ``stopped_after_days`` days before it, the
  run-out counted as everywhere (each purchase adds its net supply days from the later of its day
  and the run-out so far);
- ``customers``, the base of the rates: those who had bought by that day and were not already
  lost at the previous year's end (their loss was an earlier year's), a customer who came back
  during the year included.

The run-out of every purchase is the purchase's day or the run-out before it, whichever is
later, plus its days: that is ``S_n + max_k(d_k - S_(k-1))`` with ``S`` the running sum of supply
days, one window and one aggregate per customer, in one statement over the store's facts,
planned for its values (analysis/planning.py).
"""

from dataclasses import dataclass
from datetime import date

import asyncpg

from scoring_service.analysis.planning import planned_per_call
from scoring_service.scores.thresholds import DEFAULT_THRESHOLDS

_CHURN_SQL = """
    WITH f AS (
        SELECT customer_id, purchased_on AS d, supply_days,
               sum(supply_days) OVER (PARTITION BY customer_id ORDER BY purchased_on, purchase_id
                                      ROWS UNBOUNDED PRECEDING) AS s_incl
        FROM purchase_fact
        WHERE store_id = $1 AND purchased_on <= $2 AND NOT wholly_refunded
    ), c AS (
        SELECT max(d) AS last_on,
               max(d - CAST(s_incl - supply_days AS integer))
               + CAST(sum(supply_days) AS integer) AS runs_out_on
        FROM f
        GROUP BY customer_id
    )
    SELECT count(*) AS customers,
           count(*) FILTER (WHERE $2 - last_on >= $4) AS lost,
           count(*) FILTER (WHERE $2 - last_on < $4 AND $2 - runs_out_on > $5) AS stopped
    FROM c
    WHERE NOT (last_on <= $3 AND $3 - last_on >= $4)
"""
_THRESHOLDS_SQL = (
    "SELECT lost_after_days, stopped_after_days FROM store_tier_rules WHERE store_id = $1"
)


@dataclass(frozen=True, slots=True)
class YearChurn:
    year: int
    as_of: date
    customers: int
    lost: int
    lost_rate: float
    stopped: int
    stopped_rate: float


async def churn(db: asyncpg.Connection, *, store_id: str, year: int, today: date) -> YearChurn:
    """The year's churn, judged on its last day, or ``today`` within it."""
    as_of = min(date(year, 12, 31), today)
    rules = await db.fetchrow(_THRESHOLDS_SQL, store_id)
    lost_after = rules["lost_after_days"] if rules else DEFAULT_THRESHOLDS.lost_after_days
    stopped_after = rules["stopped_after_days"] if rules else DEFAULT_THRESHOLDS.stopped_after_days
    async with planned_per_call(db):
        row = await db.fetchrow(
            _CHURN_SQL, store_id, as_of, date(year - 1, 12, 31), lost_after, stopped_after
        )
    customers = row["customers"]
    return YearChurn(
        year=year,
        as_of=as_of,
        customers=customers,
        lost=row["lost"],
        lost_rate=round(row["lost"] / customers, 4) if customers else 0.0,
        stopped=row["stopped"],
        stopped_rate=round(row["stopped"] / customers, 4) if customers else 0.0,
    )
