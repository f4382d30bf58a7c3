"""The staff roster of each store."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_libs.pagination import PageParams, keyset
from crm_libs.principal import Principal
from crm_libs.problems import InvalidField, NotFound
from customer_service.customers.phones import normalise_phone
from customer_service.staff.models import Staff
from customer_service.staff.schemas import StaffCreate, StaffUpdate
from customer_service.stores import service as stores


async def create(session: AsyncSession, *, principal: Principal, staff_in: StaffCreate) -> Staff:
    """Add a member to a store's roster."""
    await stores.get_for_write(session, principal=principal, store_id=staff_in.store_id)
    staff = Staff(
        store_id=staff_in.store_id,
        name=staff_in.name,
        role=staff_in.role.value,
        phone=normalise_phone(staff_in.phone, field="phone") if staff_in.phone else None,
        hired_on=staff_in.hired_on,
        status=staff_in.status.value,
    )
    session.add(staff)
    await session.flush()
    return staff


async def get(session: AsyncSession, *, principal: Principal, staff_id: str) -> Staff:
    staff = await session.get(Staff, staff_id)
    if staff is None:
        raise NotFound("No such staff member")
    principal.require_store(staff.store_id, what="staff member")
    return staff


async def update(
    session: AsyncSession, *, principal: Principal, staff_id: str, staff_in: StaffUpdate
) -> Staff:
    staff = await get(session, principal=principal, staff_id=staff_id)
    changes = staff_in.model_dump(exclude_unset=True)
    if "phone" in changes and changes["phone"]:
        changes["phone"] = normalise_phone(changes["phone"], field="phone")
    for name, value in changes.items():
        if value is None and name in ("name", "role", "status"):
            raise InvalidField(name, "may not be null")
        setattr(staff, name, value.value if hasattr(value, "value") else value)
    await session.flush()
    return staff


async def list_visible(
    session: AsyncSession, *, principal: Principal, store_id: str | None, page: PageParams
) -> list[Staff]:
    query = keyset(select(Staff), col(Staff.id), page)
    if (scope := principal.store_scope()) is not None:
        query = query.where(col(Staff.store_id) == scope)
    if store_id:
        query = query.where(col(Staff.store_id) == store_id)
    return list((await session.execute(query)).scalars())


async def get_serving(
    session: AsyncSession, *, store_id: str, staff_id: str, field: str = "staff_id"
) -> Staff:
    """The staff member named on a record of ``store_id``: must exist and work there."""
    staff = await session.get(Staff, staff_id)
    if staff is None or staff.store_id != store_id:
        raise InvalidField(field, "unknown staff member for this store")
    return staff
