"""Refunds as facts: kept by their id, applied to their purchase's fact once both are stored.

A refund counts at its purchase's time: what it takes back comes off that purchase's fact
(``total`` and ``supply_days`` become what is left of it), so it leaves net spend in the window
exactly when the purchase it undoes ages out of it, and every statement that reads facts (the
batch's add, the rebuild, the window refresh, the fits) reads net amounts without knowing about
refunds. A purchase with nothing left (no money and no days of supply) is ``wholly_refunded``:
it is no longer counted as a purchase (count, first and last purchase, the supply fold, repeat
purchases), so a customer whose only purchase was refunded is a prospect again, with no ladder
and no lifecycle (DOMAIN.md §3: those follow from having bought).

A refund whose purchase scoring has not stored yet (a purchase dead-lettered and sent back
later, one imported late, a replay into a fresh group that starts after it) waits, unapplied,
and is applied in the transaction that stores the purchase (:func:`apply_due` on the batch's
fresh purchases). Both sides look under their store's lock (service.lock_stores), so whichever
commits second sees the other: never lost, never applied twice (``applied``).
"""

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

import asyncpg
import msgspec

from scoring_service.scores import events
from scoring_service.scores.tiers import PROSPECT


class RefundSeen(msgspec.Struct, gc=False):
    """The fields of ``purchase.refunded`` this service reads; ``supply_days`` the refunded
    units' days (qty × days per unit over the refund's lines)."""

    refund_id: str
    purchase_id: str
    store_id: str
    customer_id: str
    refunded_at: datetime
    total: Decimal
    supply_days: int


# A refund delivered again adds nothing.
_STORE_SQL = """
    INSERT INTO purchase_refund_fact (refund_id, purchase_id, store_id, customer_id, refunded_at,
                                      total, supply_days)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
                         $6::numeric[], $7::integer[])
    ON CONFLICT (refund_id) DO NOTHING
"""

# Whether any refund waits at all: the partial index of waiting refunds, empty in the normal run
# of things, answers it without a batch's thousands of purchase ids sent to be looked up (14 ms
# a batch of 7,700 on the pipeline benchmark).
_ANY_WAITING_SQL = "SELECT EXISTS (SELECT FROM purchase_refund_fact WHERE NOT applied)"

# Every unapplied refund of these purchases whose fact is stored, applied to it once. Returns
# the customers whose facts changed (the fact's customer: a merge may have moved it).
_APPLY_SQL = """
    WITH due AS (
        UPDATE purchase_refund_fact AS r SET applied = true
        WHERE NOT r.applied AND r.purchase_id = ANY($1::text[])
          AND EXISTS (SELECT FROM purchase_fact AS f WHERE f.purchase_id = r.purchase_id)
        RETURNING r.purchase_id, r.total, r.supply_days
    ), summed AS (
        SELECT purchase_id, sum(total) AS total, sum(supply_days) AS days
        FROM due GROUP BY purchase_id
    )
    UPDATE purchase_fact AS f SET
        total = f.total - s.total,
        supply_days = GREATEST(f.supply_days - s.days, 0),
        wholly_refunded = f.total - s.total <= 0 AND f.supply_days - s.days <= 0
    FROM summed AS s
    WHERE f.purchase_id = s.purchase_id
    RETURNING f.customer_id, f.store_id, f.timezone
"""

# Customers left with no purchase are prospects again (service._RERANK_SQL does the same for a
# whole store). $1 the customers, $2 now.
_UNBOUGHT_SQL = f"""
    WITH moved AS (
        UPDATE customer_score AS cs
        SET value_tier = '{PROSPECT}', version = cs.version + 1, computed_at = $2
        FROM (SELECT customer_id, value_tier AS previous_tier FROM customer_score
              WHERE customer_id = ANY($1::text[]) AND purchase_count = 0
                AND value_tier IS DISTINCT FROM '{PROSPECT}') AS p
        WHERE cs.customer_id = p.customer_id
        RETURNING cs.customer_id, cs.store_id, p.previous_tier, cs.value_tier, cs.version,
                  cs.net_spend_365d
    ), {events.staging_sql("moved")}
    SELECT customer_id, store_id, previous_tier, value_tier, version, net_spend_365d FROM moved
"""  # noqa: S608

# A refunded customer: (customer_id, store_id, timezone of the refunded purchase).
Refunded = tuple[str, str, str]


async def store_refunds(db: asyncpg.Connection, refunds: Sequence[RefundSeen]) -> None:
    """Keep the refunds (before the store's lock, like purchase facts)."""
    if not refunds:
        return
    await db.execute(
        _STORE_SQL,
        [r.refund_id for r in refunds],
        [r.purchase_id for r in refunds],
        [r.store_id for r in refunds],
        [r.customer_id for r in refunds],
        [r.refunded_at for r in refunds],
        [r.total for r in refunds],
        [r.supply_days for r in refunds],
    )


async def apply_due(db: asyncpg.Connection, purchase_ids: Sequence[str]) -> list[Refunded]:
    """Apply the waiting refunds of these purchases to their stored facts; the customers whose
    facts changed, once each. The caller holds the purchases' stores' locks."""
    if not purchase_ids or not await db.fetchval(_ANY_WAITING_SQL):
        return []
    rows = await db.fetch(_APPLY_SQL, list(purchase_ids))
    return list({r[0]: (r[0], r[1], r[2]) for r in rows}.values())


async def unbought_to_prospects(
    db: asyncpg.Connection, customer_ids: Sequence[str], *, now: datetime
) -> list[events.TierChange]:
    """Customers whose every purchase was refunded: prospects again, with ``score.changed``."""
    if not customer_ids:
        return []
    rows = await db.fetch(_UNBOUGHT_SQL, list(customer_ids), now)
    return [events.TierChange(**r) for r in rows]
