"""Segments: a store's scores filtered by classification (``GET /scores``), and how the store's
customers spread over every classification (``GET /stores/{id}/distribution``).

A listing is one store's, in customer order, paged by a cursor on the customer id, so a page
never repeats or skips a customer however many are scored meanwhile. Each filter has an index
``(store_id, <filter>, customer_id)`` (migration 0009): a page filtered by one value reads
exactly its rows, and one filtered by several reads at most the rows of the rarest value named.
The distribution counts every classification of the store in one statement, one pass over the
store's rows (GROUPING SETS).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import asyncpg
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_libs.events.driver import driver_connection
from crm_libs.pagination import PageParams, keyset
from crm_libs.principal import Principal
from crm_libs.problems import NotFound, ProblemError
from scoring_service.scores import rfm
from scoring_service.scores.classify import LADDER
from scoring_service.scores.models import (
    FLOATING,
    LOYALTY_INDEX_PREDICATE,
    TIER_INDEX_PREDICATE,
    CustomerScore,
)
from scoring_service.scores.tiers import BASE_TIER, INACTIVE, PROSPECT, PYRAMID

VALUE_TIERS = (*(tier for tier, _ in PYRAMID), BASE_TIER, INACTIVE, PROSPECT)
# The values scores/classify.py writes (DOMAIN.md §3), in the domain's order.
LIFECYCLES = (
    "new_this_year",
    "active_core",
    "active_second_line",
    "in_service_not_bought",
    "stopped",
    "lost",
)
LOYALTIES = ("loyal", "switcher", FLOATING)


@dataclass(frozen=True, slots=True)
class Dimension:
    """One classification a listing filters by and the distribution counts."""

    parameter: str  # the query parameter
    column: str  # customer_score's column
    values: tuple[str, ...]  # every value it takes, in the domain's order


# In the distribution's order: the pyramid, the ladder, the year, loyalty, RFM.
DIMENSIONS = (
    Dimension("value_tier", "value_tier", VALUE_TIERS),
    Dimension("ladder", "ladder_level", LADDER),
    Dimension("lifecycle", "lifecycle", LIFECYCLES),
    Dimension("loyalty", "loyalty", LOYALTIES),
    Dimension("rfm_segment", "rfm_segment", rfm.SEGMENTS),
)
# A customer a classification leaves out (a file with no purchase has no ladder, lifecycle or
# RFM, nor has a store of fewer than five buyers RFM; loyalty is every file's, `floating` at
# least): counted under this key, so each classification's counts add up to the store.
UNCLASSIFIED = "none"


def checked_filters(given: Mapping[str, str | None]) -> dict[str, str]:
    """The filters given (``Dimension.parameter`` -> value); 422 naming every field whose value
    is not one the classification takes, and the values it takes."""
    errors = [
        {"field": d.parameter, "message": f"must be one of: {', '.join(d.values)}"}
        for d in DIMENSIONS
        if (value := given.get(d.parameter)) is not None and value not in d.values
    ]
    if errors:
        raise ProblemError(
            "; ".join(f"{e['field']} {e['message']}" for e in errors),
            status=422,
            title="Invalid field value",
            errors=errors,
        )
    return {d.parameter: v for d in DIMENSIONS if (v := given.get(d.parameter)) is not None}


def listed_store(principal: Principal, store_id: str | None) -> str:
    """The store a listing is of: the one named, which a store's user may leave out (theirs).

    Head office names it: a listing across every store would be ordered over all their
    customers, with no index to page it by. Another store's is a 404, as if unknown."""
    if store_id is None:
        if principal.sees_all_stores:
            raise ProblemError(
                "store_id: head office names the store a listing is of",
                status=422,
                title="Invalid field value",
                errors=[{"field": "store_id", "message": "required for head office"}],
            )
        return str(principal.store_id)
    principal.require_store(store_id, what="store")
    return store_id


async def list_scores(
    session: AsyncSession,
    *,
    principal: Principal,
    store_id: str | None,
    filters: Mapping[str, str],
    page: PageParams,
) -> Sequence[CustomerScore]:
    """Up to ``page.limit + 1`` scores of the store matching every filter, in customer order
    after the page's cursor (the extra row says whether another page follows)."""
    store = listed_store(principal, store_id)
    columns = {d.parameter: d.column for d in DIMENSIONS}
    query = select(CustomerScore).where(col(CustomerScore.store_id) == store)
    for parameter, value in filters.items():
        query = query.where(getattr(CustomerScore, columns[parameter]) == value)
        # Always true here, and what lets the plan read the partial index of the column.
        if columns[parameter] == "value_tier" and value != PROSPECT:
            query = query.where(text(TIER_INDEX_PREDICATE))
        elif columns[parameter] == "loyalty" and value != FLOATING:
            query = query.where(text(LOYALTY_INDEX_PREDICATE))
    query = keyset(query, col(CustomerScore.customer_id), page)
    return (await session.execute(query)).scalars().all()


# Every classification of one store counted in one pass: each grouping set counts one column
# (GROUPING() says which), the empty set the store's customers. Only constants are interpolated.
_COLUMNS = [d.column for d in DIMENSIONS]
_DISTRIBUTION_SQL = f"""
    SELECT GROUPING({", ".join(_COLUMNS)}) AS grouping, {", ".join(_COLUMNS)}, count(*) AS n
    FROM customer_score
    WHERE store_id = $1
    GROUP BY GROUPING SETS ({", ".join(f"({c})" for c in _COLUMNS)}, ())
"""  # noqa: S608


@dataclass(frozen=True, slots=True)
class Distribution:
    customers: int
    # Dimension.parameter -> value (or UNCLASSIFIED) -> customers, every value listed.
    counts: dict[str, dict[str, int]]


async def distribution(
    session: AsyncSession, *, principal: Principal, store_id: str
) -> Distribution:
    """How the store's customers spread over each classification; NotFound for a store
    scoring holds no customer of (or another store's, for a store's user)."""
    principal.require_store(store_id, what="store")
    counted = await store_counts(await driver_connection(session), store_id=store_id)
    if not counted.customers:
        raise NotFound("Scoring holds no customer of this store")
    return counted


async def store_counts(db: asyncpg.Connection, *, store_id: str) -> Distribution:
    """The distribution of a store, counted whoever asks (every count 0 for a store scoring
    holds no customer of): the manager's report draws it too."""
    rows = await db.fetch(_DISTRIBUTION_SQL, store_id)
    customers = next((r["n"] for r in rows if r["grouping"] == (1 << len(DIMENSIONS)) - 1), 0)
    counts: dict[str, dict[str, int]] = {}
    for i, d in enumerate(DIMENSIONS):
        # GROUPING()'s bits: the first column is the highest; 0 where the column is grouped.
        others = ((1 << len(DIMENSIONS)) - 1) & ~(1 << (len(DIMENSIONS) - 1 - i))
        counted = {r[d.column]: r["n"] for r in rows if r["grouping"] == others}
        listed = {v: counted.pop(v, 0) for v in d.values}
        unclassified = counted.pop(None, 0)
        # A value this list does not know yet is still counted, never silently dropped.
        counts[d.parameter] = listed | counted | {UNCLASSIFIED: unclassified}
    return Distribution(customers=customers, counts=counts)
