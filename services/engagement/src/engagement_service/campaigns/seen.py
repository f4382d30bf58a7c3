"""Each customer's last purchase day, kept from ``purchase.recorded`` for miss_you campaigns."""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

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


async def record_purchases(session: AsyncSession, *, purchases: list[PurchaseSeen]) -> None:
    """One statement per batch: each customer's latest purchase day in it, kept if later."""
    latest: dict[str, PurchaseSeen] = {}
    for purchase in purchases:
        found = latest.get(purchase.customer_id)
        if found is None or purchase.purchased_on > found.purchased_on:
            latest[purchase.customer_id] = purchase
    if not latest:
        return
    ordered = sorted(latest.values(), key=lambda p: p.customer_id)
    await session.execute(
        _SEEN,
        {
            "customers": [p.customer_id for p in ordered],
            "stores": [p.store_id for p in ordered],
            "days": [p.purchased_on for p in ordered],
        },
    )
