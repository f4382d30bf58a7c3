"""Customer files: registration, reading and changes, always inside the caller's store (the
search is customers/search.py)."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_libs.db import driver_sql
from crm_libs.field_crypto import FieldCipher
from crm_libs.principal import Principal
from crm_libs.problems import Conflict, InvalidField, NotFound, ProblemError
from customer_service.access import MANAGEMENT
from customer_service.customers import events, pinyin, profile
from customer_service.customers.models import Customer
from customer_service.customers.schemas import CustomerCreate, CustomerUpdate
from customer_service.ownership import history as ownership
from customer_service.ownership import rules as ownership_rules
from customer_service.relations.service import relations_of
from customer_service.staff.models import Staff
from customer_service.stores import service as stores
from customer_service.stores.models import Store

ACTIVE = "active"
ARCHIVED = "archived"
# Anonymised for good (customers/privacy.py): nothing is left to change on the file.
ERASED = "erased"


@dataclass(frozen=True, slots=True)
class Protection:
    """What protects the file's sensitive fields: the field cipher and the phones' hash key."""

    cipher: FieldCipher
    phone_hash_key: str


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
    session: AsyncSession,
    *,
    principal: Principal,
    customer_in: CustomerCreate,
    protection: Protection,
) -> Customer:
    """Open a customer file in a store and announce it (``customer.registered``).

    The owner is the one named, else the registering account's staff member; an account with
    none (head office, a partner's till) leaves the file unassigned until a manager names one.
    A new file has no purchase: it starts as a ``collected`` prospect unless told its stage.
    """
    store = await stores.get_for_write(session, principal=principal, store_id=customer_in.store_id)
    customer = Customer(store_id=store.id, name="", status=ACTIVE, prospect_stage="collected")
    values = customer_in.model_dump(exclude_unset=True, exclude={"store_id"})
    if "owner_staff_id" not in values and (staff_id := getattr(principal, "staff_id", None)):
        values["owner_staff_id"] = staff_id
    values.setdefault("birthday_calendar", "solar")
    await _apply(
        session,
        customer,
        customer_in,
        values,
        principal=principal,
        timezone=store.timezone,
        protection=protection,
        new=True,
    )
    session.add(customer)
    await session.flush()
    if customer.owner_staff_id is not None:
        await ownership.record(
            session,
            customer=customer,
            from_staff_id=None,
            kind=ownership_rules.REGISTERED,
            reason="the file's first owner, at registration",
            by=principal.subject,
            enforce_limit=False,
        )
    events.customer_registered(session, customer, timezone=store.timezone)
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
    protection: Protection,
) -> tuple[Customer, list[str]]:
    """Change a file; with ``expected_version`` (If-Match) a stale write is refused (412).

    A change is announced (``customer.updated`` naming the changed fields) in its transaction.
    """
    customer = await get(session, principal=principal, customer_id=customer_id, for_update=True)
    refuse_if_erased(customer)
    if expected_version is not None and expected_version != customer.version:
        raise ProblemError(
            "The file changed since it was read; read it again", status=412, title="Stale"
        )
    values = customer_in.model_dump(exclude_unset=True)
    if "name" in values and values["name"] is None:
        raise InvalidField("name", "may not be null")
    if "birthday_calendar" in values and values["birthday_calendar"] is None:
        raise InvalidField("birthday_calendar", "may not be null: solar or lunar")
    timezone = await _timezone_of(session, customer.store_id)
    previous_owner = customer.owner_staff_id
    changed = await _apply(
        session,
        customer,
        customer_in,
        values,
        principal=principal,
        timezone=timezone,
        protection=protection,
    )
    if "owner_staff_id" in changed:
        # Kept in the file's ownership history, and refused as any change of hands beyond the
        # 90-day limit (ownership/rules.py).
        await ownership.record(
            session,
            customer=customer,
            from_staff_id=previous_owner,
            kind=ownership_rules.OWNER_CHANGED,
            reason="changed on the file by a manager",
            by=principal.subject,
            enforce_limit=True,
        )
    if changed:
        customer.version += 1
        await session.flush()
        events.customer_updated(
            session,
            customer,
            timezone=timezone,
            relations=await relations_of(session, customer_id=customer.id),
            changed=changed,
        )
    return customer, changed


async def archive(session: AsyncSession, *, principal: Principal, customer_id: str) -> Customer:
    """Archive a file (nothing is destroyed; erasure is a separate, audited process)."""
    customer = await get(session, principal=principal, customer_id=customer_id, for_update=True)
    refuse_if_erased(customer)
    if customer.status != ARCHIVED:
        customer.status = ARCHIVED
        customer.version += 1
        await session.flush()
        events.customer_archived(
            session,
            customer,
            timezone=await _timezone_of(session, customer.store_id),
            relations=await relations_of(session, customer_id=customer.id),
        )
    return customer


def refuse_if_erased(customer: Customer) -> None:
    """An erased file stays erased: a change or an archive would bring a status back."""
    if customer.status == ERASED:
        raise Conflict("The file was erased (anonymised for good): there is nothing to change")


async def _timezone_of(session: AsyncSession, store_id: str) -> str:
    timezone: str = (
        await session.execute(select(col(Store.timezone)).where(col(Store.id) == store_id))
    ).scalar_one()
    return timezone


# Written as given: the column holds the API's value.
_PLAIN = ("gender", "ethnicity", "approximate_age", "email")


async def _apply(
    session: AsyncSession,
    customer: Customer,
    customer_in: CustomerCreate | CustomerUpdate,
    values: dict[str, Any],
    *,
    principal: Principal,
    timezone: str,
    protection: Protection,
    new: bool = False,
) -> list[str]:
    """Check and write a registration's or a change's fields; the API names of those that
    changed. Every invalid field is named in one 422."""
    changed: list[str] = []
    errors = profile.FieldErrors()

    def put(field: str, value: Any, *, column: str | None = None) -> None:
        if getattr(customer, column or field) != value:
            setattr(customer, column or field, value)
            changed.append(field)

    if "name" in values:
        name = values["name"].strip()
        with errors.checking():
            if not name:
                raise InvalidField("name", "may not be blank")
            put("name", name)
            customer.name_keys = pinyin.name_search_keys(name).text
    for field in _PLAIN:
        if field in values:
            put(field, values[field])
    with errors.checking():
        _apply_dates(customer, values, timezone=timezone, put=put)
    if "phones" in values or "phone" in values:
        with errors.checking():
            current = profile.opened_phones(customer.phones_encrypted, protection.cipher)
            phones = (
                []
                if values.get("phones") is None and values.get("phone") is None
                else profile.parse_phones(customer_in.phones, customer_in.phone, current=current)
            )
            if phones != current:
                (
                    customer.phones_encrypted,
                    customer.phone_hashes,
                    customer.phone_tails,
                ) = profile.sealed_phones(
                    phones, cipher=protection.cipher, hash_key=protection.phone_hash_key
                )
                changed.append("phones")
                if phones[:1] != current[:1]:
                    changed.append("phone")
    if "address" in values:
        put("address", _without_nulls(values["address"]))
    if "deep" in values:
        # Filled over many visits: a change adds to what is known, a null forgets one key.
        deep = {**(customer.deep or {}), **(values["deep"] or {})} if values["deep"] else None
        put("deep", _without_nulls(deep))
    if "source" in values:
        source = values["source"]
        # The model's cost, not the dump's: a source sent without one leaves it unset there.
        cost = customer_in.source.cost if customer_in.source else None
        put("source", {**source, "cost": f"{cost:.2f}"} if source else None)
    if "prospect" in values and values["prospect"] is not None:
        with errors.checking():
            prospect = values["prospect"]
            if prospect.get("stage") is not None:
                put(
                    "prospect",
                    profile.next_stage(
                        customer.prospect_stage,
                        prospect["stage"],
                        may_go_back=principal.role in MANAGEMENT,
                    ),
                    column="prospect_stage",
                )
            if "grade" in prospect:
                put("prospect", prospect["grade"], column="prospect_grade")
    consents = values.get("consents")
    if consents and consents.get("sms") is not None:
        sms = consents["sms"]
        put(
            "consents",
            profile.sms_consent(customer.consents, granted=sms["granted"], channel=sms["channel"]),
        )
    if "owner_staff_id" in values:
        with errors.checking():
            owner = values["owner_staff_id"]
            if not new and owner != customer.owner_staff_id and principal.role not in MANAGEMENT:
                raise ProblemError(
                    "Only a store manager or head office changes a file's owner",
                    status=403,
                    title="Forbidden",
                )
            if owner is None and customer.owner_staff_id is not None:
                raise InvalidField("owner_staff_id", "a file keeps an owner once it has one")
            if owner is not None and owner != customer.owner_staff_id:
                await _check_owner(session, owner, store_id=customer.store_id)
            put("owner_staff_id", owner)
    if "referrer_id" in values:
        with errors.checking():
            referrer = values["referrer_id"]
            if referrer is not None and referrer != customer.referrer_id:
                await _check_referrer(session, referrer, customer=customer, new=new)
            put("referrer_id", referrer)
    sensitive: dict[str, Any] = {
        k: values[k] for k in ("id_number", "health", "health_consent") if k in values
    }
    with errors.checking():
        changed += _protect_sensitive(customer, sensitive, protection.cipher)
    errors.raise_if_any()
    return sorted(set(changed))


def _apply_dates(customer: Customer, values: dict[str, Any], *, timezone: str, put: Any) -> None:
    """Birthday (written in its calendar, kept as the solar date of birth) and anniversary."""
    errors = profile.FieldErrors()
    calendar = values.get("birthday_calendar") or customer.birthday_calendar
    if "birthday" in values:
        with errors.checking():
            put("birthday", profile.solar_birthday(values["birthday"], calendar, timezone=timezone))
    if "birthday_calendar" in values:
        put("birthday_calendar", calendar)
    if "wedding_anniversary" in values or ("birthday" in values and customer.wedding_anniversary):
        with errors.checking():
            put(
                "wedding_anniversary",
                profile.check_anniversary(
                    values.get("wedding_anniversary", customer.wedding_anniversary),
                    birthday=customer.birthday,
                    timezone=timezone,
                ),
            )
    errors.raise_if_any()


def _without_nulls(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    kept = {k: v for k, v in value.items() if v is not None}
    return kept or None


_ACTIVE_STAFF = select(col(Staff.id)).where(
    col(Staff.id) == bindparam("staff_id"),
    col(Staff.store_id) == bindparam("store_id"),
    col(Staff.status) == "active",
)
_REFERRER = select(col(Customer.id)).where(
    col(Customer.id) == bindparam("referrer_id"), col(Customer.store_id) == bindparam("store_id")
)
# The referrer's chain upwards; UNION (not ALL) ends the walk should a cycle exist at all.
_REFERRED_BY_CHAIN = text(
    """
    WITH RECURSIVE up(id) AS (
        SELECT referrer_id FROM customer WHERE id = :referrer_id
        UNION
        SELECT c.referrer_id FROM customer c JOIN up ON c.id = up.id
    )
    SELECT EXISTS (SELECT 1 FROM up WHERE id = :customer_id)
    """
)


async def _check_owner(session: AsyncSession, staff_id: str, *, store_id: str) -> None:
    found = await session.execute(_ACTIVE_STAFF, {"staff_id": staff_id, "store_id": store_id})
    if found.scalar_one_or_none() is None:
        raise InvalidField("owner_staff_id", "not an active staff member of the file's store")


async def _check_referrer(
    session: AsyncSession, referrer_id: str, *, customer: Customer, new: bool
) -> None:
    """A customer of the same store, not the file itself, and not referred by it (directly or
    down the chain): a referral chain never loops."""
    if referrer_id == customer.id:
        raise InvalidField("referrer_id", "a customer does not refer themselves")
    params = {"referrer_id": referrer_id, "store_id": customer.store_id}
    if (await session.execute(_REFERRER, params)).scalar_one_or_none() is None:
        raise InvalidField("referrer_id", "not a customer of the file's store")
    # A new file refers nobody yet: only a change can close a loop.
    if (
        not new
        and (
            await session.execute(
                _REFERRED_BY_CHAIN, {"referrer_id": referrer_id, "customer_id": customer.id}
            )
        ).scalar_one()
    ):
        raise InvalidField(
            "referrer_id", "was referred by this customer (directly or down the chain): a cycle"
        )


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
            customer.uses_competitor_products = False
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
        customer.uses_competitor_products = bool(health and health.get("other_health_products"))
        changed.append("health")
    if "id_number" in values:
        number = values["id_number"]
        customer.id_number_encrypted = cipher.encrypt(number) if number else None
        changed.append("id_number")
    return sorted(set(changed))
