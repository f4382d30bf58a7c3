"""Consumption by month as a read model: a store's whole months read from one summary row each,
the months a period cuts read from the facts by day.

``analysis_store_month`` holds each store's months as its purchase facts make them (customers
with a purchase left after refunds, such purchases, revenue net of refunds). It is kept exact by
marking, never by adding: statement-level triggers on ``purchase_fact`` (migration 0017) record,
in one INSERT per statement, the (store, month) pairs whose facts the statement inserted,
updated or deleted, whoever wrote them: the consumer's COPY of a batch's purchases, a refund
applied to its purchase, a merge moving the merged file's facts to the survivor (the month's
distinct customers can drop), a bulk ``INSERT … SELECT``. A read first recomputes the store's
marked months from the facts (:func:`refresh`), then reads the summary.

Why marks and a recompute rather than counting in the pipeline: a month's customers are
*distinct* customers, so adding a purchase would need to know whether its customer had another
in that month, a refund or a merge whether one remained: a probe per purchase in the pipeline's
hot statement and rows every writer updates (two consumers of one group would wait on each
other's summary rows). A mark costs the writing statement one grouped pass over its own rows,
and marks never conflict: one row per store, month and writing transaction. A recompute reads
one month of one store's facts through ``ix_purchase_fact_store_day``; the pipeline marks the
current month again with each batch, so a read usually recomputes that one month. A read
recomputes all of its store's marked months, not only its period's, so a store's marks never
outlive its next read; a store nobody reads is folded in the background instead
(analysis/month_summary_fold.py: every marked store's months recomputed by the same
:func:`refresh`, every ten minutes by default), so its marks do not pile up.

Exact under concurrency: a reader deletes the marks its snapshot sees, then recomputes those
months from the facts with a snapshot taken after it (the next statement of its transaction,
which sees at least as much): a writer that commits later left its own mark, which that reader
could not see and did not delete (at worst a month is recomputed once more). Readers of one store
take turns on an advisory lock, taken before either snapshot, so an older snapshot's recompute
never overwrites a newer one's. The months are passed to the recompute as values, so it is
planned for their days (an index range for one month) rather than for unknown bounds.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import asyncpg

from scoring_service.analysis.periods import Period
from scoring_service.analysis.planning import planned_per_call

# The two-int advisory lock space of "recomputing a store's months" (the second int is
# hashtext(store_id)); disjoint from the re-ranking's (scores/store_locks.py).
SUMMARY_LOCK_SPACE = 72_365_012

_ANY_MARKED_SQL = "SELECT EXISTS (SELECT FROM analysis_dirty_month WHERE store_id = $1)"
_LOCK_SQL = "SELECT pg_advisory_xact_lock($1::integer, hashtext($2::text))"

# Customers counted without sorting every purchase: grouped by month and customer first (a hash
# aggregate), then the groups counted per month.
_MONTH = "date_trunc('month', pf.purchased_on::timestamp)::date"
_TAKE_MARKS_SQL = """
    WITH taken AS (DELETE FROM analysis_dirty_month WHERE store_id = $1 RETURNING month)
    SELECT DISTINCT month FROM taken ORDER BY month
"""
# The months taken ($2, their first days) recomputed from the facts between the first and the
# end of the last ($3..$4, known to the planner: one month is read through the index).
_RECOMPUTE_SQL = f"""
    WITH per_customer AS (
        SELECT {_MONTH} AS month, pf.customer_id, count(*) AS purchases,
               sum(pf.total) AS revenue
        FROM purchase_fact AS pf
        WHERE pf.store_id = $1 AND NOT pf.wholly_refunded
          AND pf.purchased_on BETWEEN $3 AND $4 AND {_MONTH} = ANY($2::date[])
        GROUP BY 1, 2
    ), summed AS (
        SELECT m.month, count(c.customer_id) AS customers,
               COALESCE(sum(c.purchases), 0) AS purchases, COALESCE(sum(c.revenue), 0) AS revenue
        FROM unnest($2::date[]) AS m(month) LEFT JOIN per_customer AS c ON c.month = m.month
        GROUP BY m.month
    )
    INSERT INTO analysis_store_month AS s (store_id, month, customers, purchases, revenue)
    SELECT $1, month, customers, purchases, revenue FROM summed
    ON CONFLICT (store_id, month) DO UPDATE
    SET customers = excluded.customers, purchases = excluded.purchases,
        revenue = excluded.revenue
"""  # noqa: S608 (only the month's expression is interpolated)
# Whether a month the period cuts has facts outside it: if not, the whole month's summary is
# the period's part of it. $2..$3 the days before the period in its first month, $4..$5 those
# after it in its last (empty ranges when the period begins or ends with its month).
_EDGES_SQL = """
    SELECT EXISTS (SELECT FROM purchase_fact
                   WHERE store_id = $1 AND purchased_on BETWEEN $2 AND $3) AS before,
           EXISTS (SELECT FROM purchase_fact
                   WHERE store_id = $1 AND purchased_on BETWEEN $4 AND $5) AS after
"""

# Whole months from the summary ($2 ≤ month ≤ $3), the months cut from the facts by day
# ($4..$5 and $6..$7, either empty).
READ_SQL = f"""
    SELECT month, customers::bigint AS customers, purchases::bigint AS purchases, revenue
    FROM analysis_store_month
    WHERE store_id = $1 AND month BETWEEN $2 AND $3 AND purchases > 0
    UNION ALL
    SELECT month, count(*) AS customers, sum(purchases)::bigint AS purchases,
           sum(revenue) AS revenue
    FROM (
        SELECT {_MONTH} AS month, pf.customer_id, count(*) AS purchases,
               sum(pf.total) AS revenue
        FROM purchase_fact AS pf
        WHERE pf.store_id = $1 AND NOT pf.wholly_refunded
          AND (pf.purchased_on BETWEEN $4 AND $5 OR pf.purchased_on BETWEEN $6 AND $7)
        GROUP BY 1, 2
    ) AS c
    GROUP BY month
"""  # noqa: S608 (only the month's expression is interpolated)

_NONE = (date.max, date.min)  # an empty range of days


@dataclass(frozen=True, slots=True)
class MonthFigures:
    month: date  # its first day
    customers: int
    purchases: int
    revenue: Decimal


def _month_end(first: date) -> date:
    return (first + timedelta(days=31)).replace(day=1) - timedelta(days=1)


async def refresh(db: asyncpg.Connection, *, store_id: str) -> int:
    """Recompute the store's marked months from its facts (nothing to do when none is); how
    many months were recomputed."""
    if not await db.fetchval(_ANY_MARKED_SQL, store_id):
        return 0
    async with planned_per_call(db):
        await db.execute(_LOCK_SQL, SUMMARY_LOCK_SPACE, store_id)
        taken = [r["month"] for r in await db.fetch(_TAKE_MARKS_SQL, store_id)]
        if taken:
            await db.execute(_RECOMPUTE_SQL, store_id, taken, taken[0], _month_end(taken[-1]))
    return len(taken)


async def months(db: asyncpg.Connection, *, store_id: str, period: Period) -> list[MonthFigures]:
    """The period's months with a purchase, in no order; call :func:`refresh` first (in its own
    transaction: its lock is then not held while the months are read)."""
    rows = await db.fetch(READ_SQL, *await read_arguments(db, store_id=store_id, period=period))
    return [MonthFigures(r["month"], r["customers"], r["purchases"], r["revenue"]) for r in rows]


async def read_arguments(
    db: asyncpg.Connection, *, store_id: str, period: Period
) -> tuple[str, date, date, date, date, date, date]:
    """:data:`READ_SQL`'s arguments for the period: the whole months it reads from the summary
    and the days of the months it cuts, where those have facts outside it."""
    first, last = period.start.replace(day=1), period.end.replace(day=1)
    last_end = _month_end(last)
    before = (first, period.start - timedelta(days=1)) if period.start > first else _NONE
    after = (period.end + timedelta(days=1), last_end) if period.end < last_end else _NONE
    if before != _NONE or after != _NONE:
        cut = await db.fetchrow(_EDGES_SQL, store_id, *before, *after)
        before = before if cut["before"] else _NONE
        after = after if cut["after"] else _NONE
    if first == last and (before != _NONE or after != _NONE):
        # One month, cut: the period's days from the facts.
        whole, by_day = _NONE, ((period.start, period.end), _NONE)
    else:
        whole = (
            first if before == _NONE else (first + timedelta(days=31)).replace(day=1),
            last if after == _NONE else (last - timedelta(days=1)).replace(day=1),
        )
        by_day = (
            (period.start, _month_end(first)) if before != _NONE else _NONE,
            (last, period.end) if after != _NONE else _NONE,
        )
    return (store_id, *whole, *by_day[0], *by_day[1])
