"""A file's ownership as a caller sees it: its history, a customer's transfer to another
representative, and a staff member's departure, inside the caller's store."""

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_libs.principal import Principal
from crm_libs.problems import Conflict, InvalidField
from customer_service.customers import service as customers
from customer_service.ownership import departure, history, rules
from customer_service.ownership.models import OwnershipChange, PoolFile
from customer_service.ownership.pool import store_timezone
from customer_service.staff import service as staff_roster
from customer_service.staff.models import Staff


async def ownership_of(
    session: AsyncSession, *, principal: Principal, customer_id: str
) -> dict[str, Any]:
    """The file's owner, since when it waits in the pool (if it does) and every change."""
    customer = await customers.get(session, principal=principal, customer_id=customer_id)
    in_pool_since: datetime | None = (
        await session.execute(
            select(col(PoolFile.in_pool_since)).where(col(PoolFile.customer_id) == customer.id)
        )
    ).scalar_one_or_none()
    return {
        "owner_staff_id": customer.owner_staff_id,
        "in_pool_since": in_pool_since,
        "history": await history.history_of(session, customer_id=customer.id),
    }


async def transfer(
    session: AsyncSession, *, principal: Principal, customer_id: str, to_staff_id: str, reason: str
) -> OwnershipChange:
    """A customer asked for another representative: the file goes to ``to_staff_id``, an active
    staff member of its store, unless it changed hands twice in the last 90 days (409)."""
    customer = await customers.get(
        session, principal=principal, customer_id=customer_id, for_update=True
    )
    customers.refuse_if_erased(customer)
    if customer.status != customers.ACTIVE:
        raise Conflict(f"The file is {customer.status}: only an active file changes hands")
    target = await session.get(Staff, to_staff_id)
    if target is None or target.store_id != customer.store_id or target.status != "active":
        raise InvalidField("to_staff_id", "not an active staff member of the file's store")
    if target.id == customer.owner_staff_id:
        raise InvalidField("to_staff_id", "already the file's owner")
    return await history.move(
        session,
        customer=customer,
        to_staff_id=target.id,
        kind=rules.TRANSFER,
        reason=reason,
        by=principal.subject,
        timezone=await store_timezone(session, customer.store_id),
        enforce_limit=True,
    )


async def depart(
    session: AsyncSession, *, principal: Principal, staff_id: str, reason: str, note: str | None
) -> departure.Departed:
    """A staff member of the caller's store leaves, moves or went quiet: their files move."""
    await staff_roster.get(session, principal=principal, staff_id=staff_id)
    return await departure.depart(
        session, staff_id=staff_id, reason=reason, by=principal.subject, note=note
    )
