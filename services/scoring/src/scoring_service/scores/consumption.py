"""The score's consumption values that need no model: the next product or category and the
capability (scores/next_purchase.py's rules), the expected date (kept with the score:
scores/expected_dates.py) and the member event to invite to before it
(scores/member_events.py). Read when the score is read, like the model's: the store's
transitions are precomputed, so this is four small statements by key.
"""

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.driver import driver_connection
from scoring_service.scores import member_events, next_purchase
from scoring_service.scores.models import CustomerScore
from scoring_service.scores.schemas import NextEventPublic

_REFERRED_SQL = "SELECT referrer_id IS NOT NULL FROM customer_link WHERE customer_id = $1"


async def consumption_values(
    session: AsyncSession, *, score: CustomerScore, now: datetime
) -> dict[str, object]:
    """``next_purchase_on``, ``next_event``, ``next_product_sku``, ``next_category``,
    ``next_product_basis`` and ``capability`` of ``score`` as of ``now``."""
    db = await driver_connection(session)
    bought = await next_purchase.bought_by(db, customer_id=score.customer_id)
    store = await next_purchase.store_choices(db, store_id=score.store_id, bought=bought)
    product = next_purchase.choose(bought, store)
    referred = bool(await db.fetchval(_REFERRED_SQL, score.customer_id))
    runs_out = score.supply_runs_out_on if score.purchase_count > 0 else None
    event = await member_events.next_event(
        db, store_id=score.store_id, now=now, next_purchase_on=runs_out, timezone=score.timezone
    )
    return {
        # As stored and published on score.changed (scores/expected_dates.py): one definition.
        "next_purchase_on": score.expected_purchase_on if runs_out is not None else None,
        "next_event": None
        if event is None
        else NextEventPublic(
            event_id=event.event_id,
            on=event.starts_at.astimezone(ZoneInfo(score.timezone)).date(),
            starts_at=event.starts_at,
            title=event.title,
        ),
        "next_product_sku": product.sku,
        "next_category": product.category,
        "next_product_basis": product.basis,
        "capability": next_purchase.capability(
            bought=bought,
            purchase_count=score.purchase_count,
            referred=referred,
            next_product=product,
        ),
    }
