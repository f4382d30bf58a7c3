"""``customer.level_changed`` on ``crm.customers.v1``: a member's level moved by consumption.

Staged in the transaction of the change that moved it (a sale, a refund, a merge, a chunk of an
imported purchase history, or the daily job once purchases leave the 12-month window). Unlike
the file's events it carries no ``file``: the file did not change (its version neither);
consumers that have no use for it skip it.
"""

from decimal import Decimal

from crm_libs.events.envelope import EventEnvelope
from crm_libs.events.event_types import CUSTOMER_LEVEL_CHANGED

# What moved the level: the payload's ``cause``.
PURCHASE, REFUND, MERGE, WINDOW = "purchase", "refund", "merge", "window"
IMPORT = "import"


def level_changed(
    *,
    store_id: str,
    customer_id: str,
    from_level: str | None,
    to_level: str | None,
    spend_12m: Decimal,
    cause: str,
) -> EventEnvelope:
    """The event (levels by code; null below the store's lowest level)."""
    return EventEnvelope(
        type=CUSTOMER_LEVEL_CHANGED,
        store_id=store_id,
        customer_id=customer_id,
        payload={
            "from_level": from_level,
            "to_level": to_level,
            "spend_12m": f"{spend_12m:.2f}",
            "cause": cause,
        },
    )
