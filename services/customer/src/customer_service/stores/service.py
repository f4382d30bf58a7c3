"""Stores: the unit of data ownership."""

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_libs.pagination import PageParams, keyset
from crm_libs.principal import Principal
from crm_libs.problems import Conflict, Forbidden, InvalidField, NotFound
from customer_service.stores.models import Store
from customer_service.stores.schemas import StoreCreate


async def create(session: AsyncSession, *, principal: Principal, store_in: StoreCreate) -> Store:
    """Open a store (head office only)."""
    if not principal.sees_all_stores:
        raise Forbidden("Only head office can open stores")
    store = Store(code=store_in.code, name=store_in.name, timezone=store_in.timezone)
    session.add(store)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"A store with code {store_in.code!r} already exists") from exc
    await session.refresh(store)
    return store


async def get(session: AsyncSession, *, principal: Principal, store_id: str) -> Store:
    store = await session.get(Store, store_id)
    if store is None:
        raise NotFound("No such store")
    principal.require_store(store.id, what="store")
    return store


async def get_for_write(
    session: AsyncSession, *, principal: Principal, store_id: str, field: str = "store_id"
) -> Store:
    """The store a new record will belong to; unknown or foreign stores are a 422 on the field."""
    store = await session.get(Store, store_id)
    if store is None or (not principal.sees_all_stores and store.id != principal.store_id):
        raise InvalidField(field, "unknown store")
    return store


async def list_visible(
    session: AsyncSession, *, principal: Principal, page: PageParams
) -> list[Store]:
    query = keyset(select(Store), col(Store.id), page)
    if (scope := principal.store_scope()) is not None:
        query = query.where(col(Store.id) == scope)
    return list((await session.execute(query)).scalars())
