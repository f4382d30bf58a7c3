"""Erasure (DOMAIN.md §11, PIPL Art. 47): the file anonymised for good.

``ERASURE`` says what happens to each personal column and why, ``KEPT`` what stays for
anonymous statistics; the sales figures stay too (purchases/erasure.py), and ``customer.erased``
tells the other services to do the same. The export is customers/privacy_export.py's.
"""

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from sqlalchemy import null, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_libs.principal import Principal
from crm_libs.problems import Conflict, NotFound
from customer_service.customers import events
from customer_service.customers import service as customers
from customer_service.customers.models import Customer
from customer_service.purchases.erasure import clear_free_text
from customer_service.relations.models import CustomerRelation
from customer_service.relations.service import drop_for_erasure, relations_of
from customer_service.stores.models import Store

ERASED = customers.ERASED
MERGED = "merged"
# What an erased file's name reads (the column may not be null): recognisable in any list.
ERASED_NAME = "已删除"


class ErasureReason(StrEnum):
    """Why a file is erased: the grounds of PIPL Art. 47, recorded in the audit trail."""

    CUSTOMER_REQUEST = "customer_request"  # the customer asked for deletion
    CONSENT_WITHDRAWN = "consent_withdrawn"  # 47(3)
    PURPOSE_FULFILLED = "purpose_fulfilled"  # 47(1): achieved, impossible or unnecessary
    RETENTION_EXPIRED = "retention_expired"  # 47(2): service ended or retention period over
    UNLAWFUL_PROCESSING = "unlawful_processing"  # 47(4)
    OTHER = "other"  # 47(5): another ground laid down by law


# A JSON column given None holds JSON's null; an erased one holds nothing at all.
_SQL_NULL = null()

# What erasure does to each column, and why. Columns not named here are kept: ids, store,
# status and version (the pointer), owner, prospect stage and grade, created_at.
ERASURE: dict[str, tuple[Any, str]] = {
    "name": (ERASED_NAME, "the column is NOT NULL: a fixed placeholder any reader recognises"),
    "name_keys": (None, "the name's pinyin keys would find the file by name again"),
    "phones_encrypted": (None, "the numbers"),
    "phone_hashes": ([], "a keyed hash finds the file from a known number"),
    "phone_tails": ([], "with the store, the last digits narrow the file down"),
    "email": (None, "a way to reach the person"),
    "address": (_SQL_NULL, "where the person lives, down to the province: a small city identifies"),
    "id_number_encrypted": (None, "identifies the person outright"),
    "health_encrypted": (None, "sensitive personal information (PIPL Art. 28)"),
    "health_consent_at": (None, "a consent to keep data no longer kept"),
    "uses_competitor_products": (False, "read from the health data erased with it"),
    "deep": (_SQL_NULL, "free text about the person, their family and home"),
    "ethnicity": (None, "sensitive in China, and rare ones identify"),
    "birthday": (None, "with the store and gender, a date of birth identifies"),
    "birthday_calendar": ("solar", "the column is NOT NULL; the calendar said how they celebrate"),
    "wedding_anniversary": (None, "a personal date"),
    "referrer_id": (None, "who brought them is a tie between two people, like a relation"),
    "consents": (_SQL_NULL, "answers of a person who can no longer be contacted"),
}
# Kept for the chain's anonymous statistics (sales by gender and age, acquisition cost by
# channel), coarsened so that a file shares them with many others of its store.
KEPT = {
    "gender": "three values, shared with half a store",
    "approximate_age": "coarsened to its decade (67 → 60, for 60–69), from the birthday if known",
    "source": "channel, activity and cost stay; the method is free text and goes",
}
# The API fields erasure clears when they hold something (the audit entry names them).
_CLEARED_FIELDS = {
    "name": "name",
    "phones_encrypted": "phones",
    "email": "email",
    "address": "address",
    "id_number_encrypted": "id_number",
    "health_encrypted": "health",
    "health_consent_at": "health_consent",
    "deep": "deep",
    "ethnicity": "ethnicity",
    "birthday": "birthday",
    "wedding_anniversary": "wedding_anniversary",
    "referrer_id": "referrer_id",
    "consents": "consents",
}


def pointer(row: Any) -> dict[str, Any]:
    """What an erased file answers: the ids its purchases and events still name, nothing else."""
    return {name: row[name] for name in ("id", "store_id", "status", "merged_into", "version")}


@dataclass
class Erasure:
    """What an erasure did, for its answer and its audit entries."""

    customer: Customer
    cleared: list[str]
    relatives: list[str] = field(default_factory=list)
    merged_files: int = 0


def _store_of(customer_id: str) -> Any:
    # The relation index leads with the store.
    return select(col(Customer.store_id)).where(col(Customer.id) == customer_id).scalar_subquery()


async def _locked(session: AsyncSession, ids: Any, *, scope: str | None) -> dict[str, Customer]:
    """The files, locked in id order, like a relation's pair: no deadlock with a relate or
    unrelate of the same files. ``FOR NO KEY UPDATE`` lets purchases (key-share) go on."""
    query = select(Customer).where(ids).order_by(col(Customer.id)).with_for_update(key_share=True)
    if scope is not None:
        query = query.where(col(Customer.store_id) == scope)
    return {c.id: c for c in (await session.execute(query)).scalars()}


async def erase(
    session: AsyncSession, *, principal: Principal, customer_id: str, today: date | None = None
) -> Erasure:
    """Anonymise a file of the caller's store for good, and tell the other services.

    The file, its relatives (whose lists lose it) and the files merged into it change in one
    transaction with ``customer.erased`` and the relatives' ``customer.updated``.
    """
    family = (
        select(col(CustomerRelation.related_customer_id))
        .where(
            col(CustomerRelation.store_id) == _store_of(customer_id),
            col(CustomerRelation.customer_id) == customer_id,
        )
        .scalar_subquery()
    )
    scope = principal.store_scope()
    files = await _locked(
        session, or_(col(Customer.id) == customer_id, col(Customer.id).in_(family)), scope=scope
    )
    customer = files.get(customer_id)
    if customer is None:
        raise NotFound("No such customer")
    if customer.status == ERASED:
        raise Conflict("The file is already erased: erasure cannot be repeated or undone")
    if customer.status == MERGED:
        raise Conflict(
            f"The file was merged into {customer.merged_into}: erase that file, which holds the "
            "customer's facts (the files merged into it are anonymised with it)"
        )
    relatives = await drop_for_erasure(session, customer_id=customer.id)
    # A relation recorded between the read of the family and the lock: locked now, in order.
    if late := [r for r in relatives if r not in files]:
        files.update(await _locked(session, col(Customer.id).in_(late), scope=None))
    cleared = _anonymise(customer, today=today or date.today())
    customer.status = ERASED
    customer.version += 1
    merged_files = await _anonymise_merged_into(session, customer=customer)
    await clear_free_text(session, store_id=customer.store_id, customer_id=customer.id)
    params = {"store_id": customer.store_id, "customer_id": customer.id}
    await session.execute(_FORGET_IMPORTED_ROWS, params)
    await session.execute(_CHANGES_WITHOUT_MESSAGES, params)
    await session.flush()
    # The columns set to SQL NULL are expired by the flush: read back before the event is built.
    await session.refresh(customer)
    timezone = await _timezone_of(session, customer.store_id)
    events.customer_erased(session, customer, timezone=timezone)
    for relative_id in relatives:
        relative = files[relative_id]
        relative.version += 1
        await session.flush()
        events.customer_updated(
            session,
            relative,
            timezone=timezone,
            relations=await relations_of(session, customer_id=relative.id),
            changed=["relations"],
        )
    return Erasure(
        customer=customer,
        cleared=sorted(cleared + (["relations"] if relatives else [])),
        relatives=relatives,
        merged_files=merged_files,
    )


async def _timezone_of(session: AsyncSession, store_id: str) -> str:
    found: str = (
        await session.execute(select(col(Store.timezone)).where(col(Store.id) == store_id))
    ).scalar_one()
    return found


def _anonymise(customer: Customer, *, today: date) -> list[str]:
    """Apply ``ERASURE`` and ``KEPT`` to the file; the API fields that held something."""
    cleared = [
        api
        for column, api in _CLEARED_FIELDS.items()
        if getattr(customer, column) not in (None, [], {}) and column != "name"
    ]
    cleared.append("name")
    customer.approximate_age = age_band(
        birthday=customer.birthday, approximate_age=customer.approximate_age, today=today
    )
    if customer.source:
        method = customer.source.get("method")
        customer.source = {k: v for k, v in customer.source.items() if k != "method"}
        if method:
            cleared.append("source.method")
    for column, (value, _why) in ERASURE.items():
        setattr(customer, column, list(value) if isinstance(value, list) else value)
    return cleared


def age_band(*, birthday: date | None, approximate_age: int | None, today: date) -> int | None:
    """The decade of the customer's age (60 for 60–69): from the birthday when known."""
    if birthday is not None:
        age = (
            today.year - birthday.year - ((today.month, today.day) < (birthday.month, birthday.day))
        )
    elif approximate_age is not None:
        age = approximate_age
    else:
        return None
    return max(age, 0) // 10 * 10


# An imported row's fingerprint is a plain hash of the person's name, phones, birthday and ID
# number: kept beside the file, anyone holding those details could confirm they were a customer.
# Forgotten, a re-import of the same old sheet would open the person's file again: erasing a
# person also means destroying the sheets that hold them, which no database can do.
_FORGET_IMPORTED_ROWS = text(
    """
    DELETE FROM import_fingerprint
    WHERE store_id = :store_id
      AND ((kind = 'customers' AND record_id = :customer_id)
           OR (kind = 'purchases' AND record_id IN (
               SELECT id FROM purchase WHERE store_id = :store_id AND customer_id = :customer_id)))
    """
)
# A visit's trail names the fields it changed, never their values; the messages of the values it
# refused may quote them.
_CHANGES_WITHOUT_MESSAGES = text(
    """
    UPDATE customer_change
    SET skipped = (SELECT coalesce(jsonb_agg(jsonb_build_object('field', e -> 'field')), '[]')
                   FROM jsonb_array_elements(skipped) AS e)
    WHERE store_id = :store_id AND customer_id = :customer_id AND skipped <> '[]'::jsonb
    """
)

# The files merged into this one, and into those (a survivor later merged on), all the same
# person's: their personal columns go too. They stay pointers (status ``merged``, merged_into).
_MERGED_INTO = text(
    """
    WITH RECURSIVE merged(id) AS (
        SELECT id FROM customer WHERE store_id = :store_id AND merged_into = :customer_id
        UNION
        SELECT c.id FROM customer c JOIN merged m ON c.merged_into = m.id
        WHERE c.store_id = :store_id
    )
    SELECT id FROM merged
    """
)


async def _anonymise_merged_into(session: AsyncSession, *, customer: Customer) -> int:
    ids = list(
        (
            await session.execute(
                _MERGED_INTO, {"store_id": customer.store_id, "customer_id": customer.id}
            )
        ).scalars()
    )
    if not ids:
        return 0
    # A pointer keeps no statistics either: its purchases and facts moved to the survivor.
    values: dict[str, Any] = {column: value for column, (value, _why) in ERASURE.items()}
    values |= {"approximate_age": None, "source": _SQL_NULL, "version": col(Customer.version) + 1}
    await session.execute(update(Customer).where(col(Customer.id).in_(ids)).values(values))
    return len(ids)
