"""A staff member leaves, moves or goes quiet (DOMAIN.md §9): their files become orphans, and
each goes to the active staff member of the store who sold to the customer most recently within
the last year, or else to the store's pool.

Only active files move: an archived, merged or erased file keeps its last owner as a record.
The departing staff member's roster entry ends in the same transaction (``left`` for a staff
member who left or moved to another store, ``inactive`` for one who went quiet), so no new file
can be given to them while theirs move. Departing someone already departed moves whatever
files they still hold (none, usually) and answers the counts.
"""

from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from customer_service.customers.models import Customer
from customer_service.ownership import history, rules
from customer_service.staff.models import Staff
from customer_service.stores.models import Store

# What the roster says of a departed staff member, by the departure's reason.
STATUS_AFTER = {"left": "left", "moved": "left", "inactive": "inactive"}

# Per orphan, the active staff member of the store (not the departing one) with its most recent
# sale to the customer within the window.
_RECENT_SELLERS = text(
    """
    SELECT DISTINCT ON (p.customer_id) p.customer_id, p.staff_id
    FROM purchase AS p JOIN staff AS s ON s.id = p.staff_id
    WHERE p.store_id = :store_id AND p.customer_id = ANY(CAST(:ids AS text[]))
      AND p.staff_id <> :departing AND s.store_id = :store_id AND s.status = 'active'
      AND p.purchased_at >= now() - make_interval(days => :days)
    ORDER BY p.customer_id, p.purchased_at DESC, p.id DESC
    """
)


@dataclass(frozen=True, slots=True)
class Departed:
    reassigned: int
    to_pool: int


async def depart(
    session: AsyncSession, *, staff_id: str, reason: str, by: str, note: str | None = None
) -> Departed:
    """End a staff member's roster entry for ``reason`` (left, moved, inactive) and move their
    active files. The caller checked the caller's store and commits."""
    staff = (
        await session.execute(select(Staff).where(col(Staff.id) == staff_id).with_for_update())
    ).scalar_one()
    staff.status = STATUS_AFTER[reason]
    # In id order: two movers of the same files never deadlock.
    orphans = list(
        (
            await session.execute(
                select(Customer)
                .where(col(Customer.owner_staff_id) == staff_id, col(Customer.status) == "active")
                .order_by(col(Customer.id))
                .with_for_update()
            )
        ).scalars()
    )
    if not orphans:
        await session.flush()
        return Departed(reassigned=0, to_pool=0)
    sellers = {
        row.customer_id: row.staff_id
        for row in await session.execute(
            _RECENT_SELLERS,
            {
                "ids": [c.id for c in orphans],
                "departing": staff_id,
                "store_id": staff.store_id,
                "days": rules.RECENT_SELLER_WINDOW.days,
            },
        )
    }
    timezone = (
        await session.execute(select(col(Store.timezone)).where(col(Store.id) == staff.store_id))
    ).scalar_one()
    why = f"{reason}: {note}" if note else reason
    reassigned = 0
    for customer in orphans:
        seller = sellers.get(customer.id)
        await history.move(
            session,
            customer=customer,
            to_staff_id=seller,
            kind=rules.DEPARTURE,
            reason=why,
            by=by,
            timezone=timezone,
            # A departure is never refused (ownership/rules.py): the files must move.
            enforce_limit=False,
        )
        reassigned += seller is not None
    return Departed(reassigned=reassigned, to_pool=len(orphans) - reassigned)
