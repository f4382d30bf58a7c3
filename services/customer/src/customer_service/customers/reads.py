"""Reading a customer file, always inside the caller's store: as the ORM's object to change
(``get``) or as a row for a pure read (``read``)."""

from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_libs.db import driver_sql
from crm_libs.principal import Principal
from crm_libs.problems import NotFound
from customer_service.customers.models import Customer

# Built once: SQLAlchemy memoises a statement's cache key, so a request neither rebuilds the
# query nor recomputes the key to find its compiled form (the hottest read in the service).
# Every column of the model: a column added to it is read (and shown, where the public schema
# names it) without touching a query.
_BY_ID = select(Customer).where(col(Customer.id) == bindparam("customer_id"))
_BY_ID_IN_STORE = _BY_ID.where(col(Customer.store_id) == bindparam("store_id"))

# What reads return: the file's row by column name (an asyncpg record on the hot paths, see
# ``row_of`` for a file the ORM holds).
CustomerRow = Mapping[str, Any]
_COLUMNS = tuple(Customer.__table__.columns.keys())  # type: ignore[attr-defined]


def row_of(customer: Customer) -> CustomerRow:
    """A file the ORM holds (just written) as the same row a read returns."""
    return {name: getattr(customer, name) for name in _COLUMNS}


async def get(
    session: AsyncSession, *, principal: Principal, customer_id: str, for_update: bool = False
) -> Customer:
    """A customer of the caller's store; another store's file is as unknown as a missing one."""
    scope = principal.store_scope()
    query = _BY_ID if scope is None else _BY_ID_IN_STORE
    if for_update:
        query = query.with_for_update()
    params = {"customer_id": customer_id, "store_id": scope}
    customer = (await session.execute(query, params)).scalar_one_or_none()
    if customer is None:
        raise NotFound("No such customer")
    return customer


async def read(conn: Any, *, principal: Principal, customer_id: str) -> CustomerRow:
    """``get`` for a pure read, on the driver connection (``crm_libs.db.request_connection``):
    one prepared SELECT, no ORM object built."""
    scope = principal.store_scope()
    sql, args = driver_sql(
        _BY_ID if scope is None else _BY_ID_IN_STORE,
        {"customer_id": customer_id, "store_id": scope},
    )
    row: CustomerRow | None = await conn.fetchrow(sql, *args)
    if row is None:
        raise NotFound("No such customer")
    return row
