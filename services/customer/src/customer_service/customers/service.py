"""Customer files: registration, reading, listing, always inside the caller's store."""

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_libs.db import driver_sql
from crm_libs.field_crypto import FieldCipher
from crm_libs.pagination import PageParams, keyset
from crm_libs.principal import Principal
from crm_libs.problems import InvalidField, NotFound, ProblemError
from customer_service.customers import events, visibility
from customer_service.customers.models import Customer
from customer_service.customers.phones import (
    looks_like_phone,
    masked_phone_query,
    normalise_phone,
)
from customer_service.customers.schemas import CustomerCreate, CustomerUpdate
from customer_service.stores import service as stores

ARCHIVED = "archived"
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


async def register(
    session: AsyncSession, *, principal: Principal, customer_in: CustomerCreate, cipher: FieldCipher
) -> Customer:
    """Open a customer file in a store and announce it."""
    store = await stores.get_for_write(session, principal=principal, store_id=customer_in.store_id)
    if customer_in.birthday and customer_in.birthday > date.today():
        raise InvalidField("birthday", "lies in the future")
    customer = Customer(
        store_id=customer_in.store_id,
        name=customer_in.name.strip(),
        phone=normalise_phone(customer_in.phone) if customer_in.phone else None,
        gender=customer_in.gender.value if customer_in.gender else None,
        birthday=customer_in.birthday,
    )
    sensitive = customer_in.model_dump(
        include={"id_number", "health", "health_consent"}, exclude_unset=True
    )
    _protect_sensitive(customer, sensitive, cipher)
    session.add(customer)
    await session.flush()
    events.customer_registered(
        session, customer_id=customer.id, store_id=customer.store_id, timezone=store.timezone
    )
    return customer


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


async def update(
    session: AsyncSession,
    *,
    principal: Principal,
    customer_id: str,
    customer_in: CustomerUpdate,
    expected_version: int | None,
    cipher: FieldCipher,
) -> tuple[Customer, list[str]]:
    """Change a file; with ``expected_version`` (If-Match) a stale write is refused (412)."""
    customer = await get(session, principal=principal, customer_id=customer_id, for_update=True)
    if expected_version is not None and expected_version != customer.version:
        raise ProblemError(
            "The file changed since it was read; read it again", status=412, title="Stale"
        )
    changes = customer_in.model_dump(exclude_unset=True)
    if changes.get("name") is None and "name" in changes:
        raise InvalidField("name", "may not be null")
    if changes.get("phone"):
        changes["phone"] = normalise_phone(changes["phone"])
    if changes.get("birthday") and changes["birthday"] > date.today():
        raise InvalidField("birthday", "lies in the future")
    sensitive: dict[str, Any] = {
        k: changes.pop(k) for k in ("id_number", "health", "health_consent") if k in changes
    }
    changed = _protect_sensitive(customer, sensitive, cipher)
    for field, value in changes.items():
        value = value.value if hasattr(value, "value") else value
        if getattr(customer, field) != value:
            setattr(customer, field, value)
            changed.append(field)
    if changed:
        customer.version += 1
        await session.flush()
    return customer, changed


async def archive(session: AsyncSession, *, principal: Principal, customer_id: str) -> Customer:
    """Archive a file (nothing is destroyed; erasure is a separate, audited process)."""
    customer = await get(session, principal=principal, customer_id=customer_id, for_update=True)
    if customer.status != ARCHIVED:
        customer.status = ARCHIVED
        customer.version += 1
        await session.flush()
    return customer


def _protect_sensitive(
    customer: Customer, values: dict[str, Any], cipher: FieldCipher
) -> list[str]:
    """Apply ID number, health data and health consent; encrypted, and health only with consent.

    Withdrawing consent deletes the health data. Returns the fields that changed.
    """
    changed = []
    if "health_consent" in values:
        if values["health_consent"] and customer.health_consent_at is None:
            customer.health_consent_at = datetime.now(UTC)
            changed.append("health_consent")
        elif values["health_consent"] is False and customer.health_consent_at is not None:
            customer.health_consent_at = None
            customer.health_encrypted = None
            changed += ["health_consent", "health"]
    if "health" in values:
        if values["health"] is not None and customer.health_consent_at is None:
            raise InvalidField(
                "health",
                "keeping health data needs the customer's separate consent (health_consent)",
            )
        health = values["health"]
        customer.health_encrypted = (
            cipher.encrypt(orjson.dumps(health).decode()) if health else None
        )
        changed.append("health")
    if "id_number" in values:
        number = values["id_number"]
        customer.id_number_encrypted = cipher.encrypt(number) if number else None
        changed.append("id_number")
    return sorted(set(changed))


def _matching(q: str, *, principal: Principal) -> ColumnElement[bool]:
    """A name part, or a phone: any tail for roles that see it whole, else see ``phones``."""
    pattern = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    by_name = col(Customer.name).contains(pattern, autoescape=False)
    if visibility.shows_whole("phone", principal.role):
        return or_(by_name, col(Customer.phone).endswith(q)) if q.isdigit() else by_name
    if not looks_like_phone(q):
        return by_name
    digits, is_tail = masked_phone_query(q)
    if is_tail:
        return or_(by_name, col(Customer.phone).endswith(digits))
    return col(Customer.phone) == digits


async def search(
    conn: Any,
    *,
    principal: Principal,
    store_id: str | None,
    q: str | None,
    page: PageParams,
) -> list[CustomerRow]:
    """A page of files, on the driver connection (the statement is compiled once per shape)."""
    query = keyset(select(Customer).where(col(Customer.status) != ARCHIVED), col(Customer.id), page)
    if (scope := principal.store_scope()) is not None:
        query = query.where(col(Customer.store_id) == scope)
    if store_id:
        query = query.where(col(Customer.store_id) == store_id)
    if q:
        query = query.where(_matching(q, principal=principal))
    sql, args = driver_sql(query)
    rows: list[CustomerRow] = await conn.fetch(sql, *args)
    return rows
