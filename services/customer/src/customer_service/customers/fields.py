"""A registration's or a change's fields checked and written onto the file
(customers/service.py): each invalid one named in one 422, the sensitive ones encrypted."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_libs.field_crypto import FieldCipher
from crm_libs.principal import Principal
from crm_libs.problems import InvalidField, ProblemError
from customer_service.access import MANAGEMENT
from customer_service.customers import pinyin, profile
from customer_service.customers.models import Customer
from customer_service.customers.schemas import CustomerCreate, CustomerUpdate
from customer_service.staff.models import Staff


@dataclass(frozen=True, slots=True)
class Protection:
    """What protects the file's sensitive fields: the field cipher and the phones' hash key."""

    cipher: FieldCipher
    phone_hash_key: str


# Written as given: the column holds the API's value.
_PLAIN = ("gender", "ethnicity", "approximate_age", "email")


async def apply_fields(
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
