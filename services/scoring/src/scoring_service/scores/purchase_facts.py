"""A batch's purchase facts (``purchase_fact``): made ready before its transaction, then stored
with one COPY (a first delivery) or one INSERT that skips those stored before (a replay).

A purchase's fact is its claim: the consumer writes no ``processed_event`` row for it, and a
fact stored before fails the COPY exactly as a claim would.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from scoring_service.scores.aggregates import PurchaseSeen, fold_batch

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


@dataclass
class PreparedPurchases:
    """A batch's purchases made ready for its statements before its transaction: the facts'
    rows for COPY and the batch folded per customer, as the statements' array parameters."""

    purchases: Sequence[PurchaseSeen]
    customer_ids: list[str]  # each purchase's, when made ready
    facts: list[tuple[object, ...]]  # the rows of purchase_fact
    folded: list[list[Any]]  # the add statement's $1..$8 (scores/batch_add.py)

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


async def store_facts(
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
