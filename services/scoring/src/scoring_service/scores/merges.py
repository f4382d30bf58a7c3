"""``customer.merged``: the merged-away file's purchases become the survivor's.

The duplicate's purchase facts are re-keyed to the survivor, whose aggregates are rebuilt from
all its facts (net spend, count, first and last purchase, supply); the duplicate's score row is
removed (the customer service answers its file as a pointer, and it must not hold a place in
the store's pyramid); the store is re-ranked, which stages ``score.changed`` for the survivor
if its tier moved, and for anyone the merge pushed. ``merged_customer`` remembers each merge, so
a purchase of the duplicate that arrives later (``crm.purchases.v1`` has no order with this
topic) is folded into the survivor (:func:`rekeyed`).

Applying a merge again changes nothing: the facts are the survivor's already, there is no row
to remove, and a re-rank of unchanged spend moves no tier. Like the rest of a batch, merges are
a fixed number of statements however many the batch holds.
"""

from collections.abc import Sequence
from datetime import UTC, date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.driver import driver_connection
from scoring_service.scores import events, expected_dates, history
from scoring_service.scores.aggregates import PurchaseSeen
from scoring_service.scores.consumed import DEFAULT_TIMEZONE, Merged
from scoring_service.scores.rebuild import rebuild_aggregates
from scoring_service.scores.rerank import rerank
from scoring_service.scores.store_locks import lock_stores_on
from scoring_service.scores.tiers import PROSPECT, window_start

_SURVIVORS_OF_SQL = """
    SELECT customer_id, survivor_id FROM merged_customer WHERE customer_id = ANY($1::text[])
"""

# Remember the merges (a survivor already merged on is followed to its own survivor), and point
# the files merged into a duplicate before at its survivor. Returns each merge as applied.
_RECORD_SQL = """
    WITH given AS (
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
            AS g(customer_id, survivor_id, store_id)
    ), resolved AS (
        SELECT g.customer_id, COALESCE(m.survivor_id, g.survivor_id) AS survivor_id, g.store_id
        FROM given AS g LEFT JOIN merged_customer AS m ON m.customer_id = g.survivor_id
    ), recorded AS (
        INSERT INTO merged_customer (customer_id, survivor_id, store_id)
        SELECT customer_id, survivor_id, store_id FROM resolved
        ON CONFLICT (customer_id) DO NOTHING
    ), chained AS (
        UPDATE merged_customer AS mc SET survivor_id = r.survivor_id
        FROM resolved AS r WHERE mc.survivor_id = r.customer_id
    )
    SELECT customer_id, survivor_id, store_id FROM resolved
"""

# The duplicates' facts become the survivors'; the survivors that received any come back.
_MOVE_FACTS_SQL = """
    UPDATE purchase_fact AS pf SET customer_id = m.survivor_id
    FROM unnest($1::text[], $2::text[]) AS m(customer_id, survivor_id)
    WHERE pf.customer_id = m.customer_id
    RETURNING m.survivor_id
"""

# Each survivor has a score row (its registration may come later, on another partition: then
# it changes nothing); the duplicates' rows go.
_SCORE_ROWS_SQL = f"""
    WITH m AS (
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
            AS m(customer_id, survivor_id, store_id)
    ), survivors AS (
        INSERT INTO customer_score (customer_id, store_id, timezone, purchase_count,
                                    net_spend_365d, value_tier, version, computed_at)
        SELECT DISTINCT ON (m.survivor_id) m.survivor_id, m.store_id,
               COALESCE(d.timezone, $4), 0, 0, '{PROSPECT}', 1, $5
        FROM m LEFT JOIN customer_score AS d ON d.customer_id = m.customer_id
        ORDER BY m.survivor_id
        ON CONFLICT (customer_id) DO NOTHING
    )
    DELETE FROM customer_score WHERE customer_id IN (SELECT customer_id FROM m)
"""  # noqa: S608 (only the tier's constant is interpolated)


async def rekeyed(session: AsyncSession, purchases: list[PurchaseSeen]) -> list[PurchaseSeen]:
    """The purchases, each of a merged-away file given to its survivor (one read per batch)."""
    if not purchases:
        return purchases
    db = await driver_connection(session)
    rows = await db.fetch(_SURVIVORS_OF_SQL, list({p.customer_id for p in purchases}))
    if rows:
        survivor = {r["customer_id"]: r["survivor_id"] for r in rows}
        for p in purchases:
            p.customer_id = survivor.get(p.customer_id, p.customer_id)
    return purchases


def _resolved_in_batch(merges: Sequence[Merged]) -> list[Merged]:
    """The batch's merges with chains inside the batch followed (A into B, then B into C: A's
    facts end with C), each duplicate once."""
    survivor: dict[str, str] = {}
    store: dict[str, str] = {}
    for customer_id, survivor_id, store_id in merges:
        if customer_id == survivor_id or customer_id in survivor:
            continue
        for earlier, into in survivor.items():
            if into == customer_id:
                survivor[earlier] = survivor_id
        survivor[customer_id], store[customer_id] = survivor_id, store_id
    return [(c, s, store[c]) for c, s in survivor.items()]


async def apply_merges(
    session: AsyncSession, *, merges: Sequence[Merged], as_of: date | None = None
) -> list[events.TierChange]:
    """Fold each merged-away file into its survivor and re-rank their stores."""
    merged = _resolved_in_batch(merges)
    if not merged:
        return []
    db = await driver_connection(session)
    stores = {s for _, _, s in merged}
    await lock_stores_on(db, stores)
    applied = await db.fetch(
        _RECORD_SQL,
        [c for c, _, _ in merged],
        [s for _, s, _ in merged],
        [st for _, _, st in merged],
    )
    duplicates = [r["customer_id"] for r in applied]
    survivors = [r["survivor_id"] for r in applied]
    received = {r[0] for r in await db.fetch(_MOVE_FACTS_SQL, duplicates, survivors)}
    now, since = window_start(as_of)
    await db.execute(
        _SCORE_ROWS_SQL,
        duplicates,
        survivors,
        [r["store_id"] for r in applied],
        DEFAULT_TIMEZONE,
        datetime.now(UTC),
    )
    if received:
        await rebuild_aggregates(db, customer_ids=sorted(received), since=since, now=now)
        # The survivors' run-outs, published before what the re-rank publishes carries them.
        await expected_dates.publish_moved_dates(
            db, now=now, cause=history.MERGED, customer_ids=sorted(received)
        )
    return await rerank(db, stores, now=now)
