"""A manager's ladder floor (铁杆 set by hand): the computed level never drops below it until the
manager clears it. Setting or clearing it classifies the customer at once, so the ladder, its
history row and ``score.changed`` follow in the same transaction."""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_libs.events.driver import driver_connection
from crm_libs.principal import Principal
from scoring_service.scores import classify, history, service
from scoring_service.scores.models import CustomerScore

_SET_SQL = """
    UPDATE customer_score
    SET ladder_floor = $2, ladder_floor_reason = $3, ladder_floor_by = $4
    WHERE customer_id = $1
"""


async def set_floor(
    session: AsyncSession,
    *,
    principal: Principal,
    customer_id: str,
    level: str | None,
    reason: str | None,
    now: datetime,
) -> CustomerScore:
    """Set (``level``) or clear (None) the customer's floor and classify them again."""
    score = await service.get_score(session, principal=principal, customer_id=customer_id)
    # The store's lock, as a batch takes it, before this customer's row is written.
    await service.lock_stores(session, store_ids=[score.store_id])
    db = await driver_connection(session)
    by = principal.subject if level is not None else None
    await db.execute(_SET_SQL, customer_id, level, reason if level is not None else None, by)
    cause = history.FLOOR_SET if level is not None else history.FLOOR_CLEARED
    await classify.classify_customers(db, customer_ids=[customer_id], now=now, cause=cause)
    fresh = select(CustomerScore).where(col(CustomerScore.customer_id) == customer_id)
    return (await session.execute(fresh.execution_options(populate_existing=True))).scalar_one()
