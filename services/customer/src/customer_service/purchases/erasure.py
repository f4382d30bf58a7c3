"""What an erased customer's purchases keep: the anonymous sales figures, and no free text.

A purchase keeps its store, products, quantities, amounts and dates (the chain's sales figures,
and scoring's history), and the customer's id as an opaque key. What was written about the
customer goes: the acknowledged contraindication matches (health data, encrypted on the
purchase), the refunds' notes, and the same two in the answers kept to replay keyed retries.
"""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_PURCHASES = text(
    """
    UPDATE purchase SET acknowledged_warnings_encrypted = NULL
    WHERE store_id = :store_id AND customer_id = :customer_id
      AND acknowledged_warnings_encrypted IS NOT NULL
    """
)
_REFUNDS = text(
    """
    UPDATE purchase_refund SET note = NULL
    WHERE purchase_id IN (
        SELECT id FROM purchase WHERE store_id = :store_id AND customer_id = :customer_id
    ) AND note IS NOT NULL
    """
)
# A replayed answer loses the same words (the warnings as the seller was told them, the note);
# the record stays, so a retry with its key still replays rather than selling twice. No index
# serves this: erasures are rare, and the records of a sale or a refund name the customer.
_REPLAYS = text(
    """
    UPDATE idempotency_record
    SET body = body || (
        jsonb_build_object('acknowledgement', NULL, 'note', NULL)
        - (CASE WHEN body ? 'acknowledgement' THEN '' ELSE 'acknowledgement' END)
        - (CASE WHEN body ? 'note' THEN '' ELSE 'note' END)
    )
    WHERE body ->> 'customer_id' = :customer_id
      AND (jsonb_typeof(body -> 'acknowledgement') = 'object'
           OR jsonb_typeof(body -> 'note') = 'string')
    """
)


async def clear_free_text(session: AsyncSession, *, store_id: str, customer_id: str) -> int:
    """Clear what was written about the customer on their purchases and refunds; how many
    purchases held acknowledged matches."""
    params = {"store_id": store_id, "customer_id": customer_id}
    cleared = await session.execute(_PURCHASES, params)
    await session.execute(_REFUNDS, params)
    await session.execute(_REPLAYS, {"customer_id": customer_id})
    return int(cleared.rowcount)  # type: ignore[attr-defined]  # a CursorResult for an UPDATE
