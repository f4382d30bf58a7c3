"""Each customer's last purchase day, kept from ``purchase.recorded`` for miss_you campaigns,
under the file that holds the customer's history now: a merged-away file's day is its
survivor's, so a person is missed (or not) once, as the survivor."""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from engagement_service.customers.service import FileState, Merge
from engagement_service.followups.service import PurchaseSeen

_SEEN = text(
    """
    INSERT INTO customer_seen (customer_id, store_id, last_purchase_on)
    SELECT * FROM unnest(CAST(:customers AS text[]), CAST(:stores AS text[]),
                         CAST(:days AS date[]))
    ON CONFLICT (customer_id) DO UPDATE
    SET store_id = EXCLUDED.store_id,
        last_purchase_on = GREATEST(customer_seen.last_purchase_on, EXCLUDED.last_purchase_on)
    """
)


# The merged-away file leaves the audience's copy; its day goes to the survivor if later. Run
# again (a merge delivered twice) it finds nothing to move.
_MERGED = text(
    """
    WITH moved AS (
        DELETE FROM customer_seen AS s
        USING unnest(CAST(:customers AS text[]), CAST(:survivors AS text[]))
              AS m(customer_id, survivor_id)
        WHERE s.customer_id = m.customer_id
        RETURNING m.survivor_id, s.store_id, s.last_purchase_on
    )
    INSERT INTO customer_seen (customer_id, store_id, last_purchase_on)
    SELECT DISTINCT ON (survivor_id) survivor_id, store_id, last_purchase_on
    FROM moved ORDER BY survivor_id, last_purchase_on DESC
    ON CONFLICT (customer_id) DO UPDATE
    SET last_purchase_on = GREATEST(customer_seen.last_purchase_on, EXCLUDED.last_purchase_on)
    """
)


async def record_purchases(
    session: AsyncSession, *, purchases: list[PurchaseSeen], files: dict[str, FileState]
) -> None:
    """One statement per batch: each customer's latest purchase day in it, kept if later.

    ``files``: where each purchase's customer is now (a sale of a merged-away file arriving
    after its merge is the survivor's)."""
    latest: dict[str, tuple[str, PurchaseSeen]] = {}
    for purchase in purchases:
        file = files.get(purchase.customer_id)
        holder = file.customer_id if file is not None else purchase.customer_id
        found = latest.get(holder)
        if found is None or purchase.purchased_on > found[1].purchased_on:
            latest[holder] = (holder, purchase)
    if not latest:
        return
    ordered = sorted(latest.values(), key=lambda held: held[0])
    await session.execute(
        _SEEN,
        {
            "customers": [holder for holder, _ in ordered],
            "stores": [p.store_id for _, p in ordered],
            "days": [p.purchased_on for _, p in ordered],
        },
    )


async def follow_merges(session: AsyncSession, *, merges: list[Merge]) -> None:
    """Each merged-away file's last purchase day onto its survivor (kept if later)."""
    if not merges:
        return
    await session.execute(
        _MERGED,
        {
            "customers": [m.customer_id for m in merges],
            "survivors": [m.survivor.customer_id for m in merges],
        },
    )
