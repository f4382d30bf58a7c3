"""The customer's privacy rights (DOMAIN.md §11, PIPL): a copy of everything this service holds
on them, and erasure.

Export: the whole file decrypted (it is the customer's own copy), the family relations, every
purchase with its lines, refunds and acknowledged contraindications, the consents with their
times and channels, the files merged into this one, and where the file came from. What the other
services hold (engagement's tasks and visits, scoring's scores) is named, not copied:
``ELSEWHERE``.

Erasure anonymises the file for good: ``ERASURE`` says what happens to each personal column and
why; the anonymous sales figures stay (purchases/erasure.py), and ``customer.erased`` tells the
other services to do the same.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import null, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_libs.field_crypto import FieldCipher
from crm_libs.principal import Principal
from crm_libs.problems import Conflict, NotFound
from customer_service.customers import events, profile
from customer_service.customers import service as customers
from customer_service.customers.models import Customer
from customer_service.customers.schemas import CustomerPublic, HealthRecord
from customer_service.customers.visibility import POLICY as SENSITIVE
from customer_service.purchases import contraindications
from customer_service.purchases.erasure import clear_free_text
from customer_service.purchases.models import (
    Purchase,
    PurchaseLine,
    PurchaseRefund,
    PurchaseRefundLine,
)
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

# The data other services keep on a customer: an export of this service names them, and a
# complete export across services is a later step.
ELSEWHERE: list[dict[str, Any]] = [
    {
        "service": "engagement",
        "holds": ["tasks", "visits"],
        "read_with": "GET /tasks?customer_id={customer_id}",
    },
    {
        "service": "scoring",
        "holds": ["scores"],
        "read_with": "GET /customers/{customer_id}/score",
    },
]
ELSEWHERE_NOTE = (
    "This export holds what the customer service keeps. Engagement and scoring keep data of "
    "their own on the customer (listed in elsewhere); exporting it with this copy is a later "
    "step, not done here."
)


def pointer(row: Any) -> dict[str, Any]:
    """What an erased file answers: the ids its purchases and events still name, nothing else."""
    return {name: row[name] for name in ("id", "store_id", "status", "merged_into", "version")}


# --- export ------------------------------------------------------------------------------------


async def export(
    session: AsyncSession, *, principal: Principal, customer_id: str, cipher: FieldCipher
) -> dict[str, Any]:
    """Everything this service holds on a customer of the caller's store, decrypted."""
    # One snapshot for every section: a sale recorded meanwhile is in all of them or none.
    await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    customer = await customers.get(session, principal=principal, customer_id=customer_id)
    row = customers.row_of(customer)
    purchases = await _purchases(session, customer=customer, cipher=cipher)
    return {
        "customer_id": customer.id,
        "exported_at": datetime.now(UTC),
        "file": whole_file(row, cipher),
        "relations": await _relations(session, customer=customer),
        "purchases": purchases,
        "consents": consents(row),
        "merges": await _merges(session, customer=customer),
        "imports": _imports(row),
        "elsewhere": [
            {**e, "read_with": e["read_with"].format(customer_id=customer.id)} for e in ELSEWHERE
        ],
        "note": ELSEWHERE_NOTE,
    }


def disclosed(exported: dict[str, Any]) -> list[str]:
    """The sensitive fields an export shows whole (every one it holds), for the audit trail."""
    file = exported["file"]
    fields = {name for name in SENSITIVE if file.get(name)}
    if file.get("phones"):
        fields.add("phone")
    if any(p["acknowledgement"] for p in exported["purchases"]):
        fields.add("health")  # the matches acknowledged on a sale are the health file's words
    return sorted(fields)


_PUBLIC_FIELDS = tuple(CustomerPublic.model_fields)


def whole_file(row: Any, cipher: FieldCipher) -> dict[str, Any]:
    """The file as CustomerPublic names it, every sensitive field decrypted and whole."""
    record = {name: row.get(name) for name in _PUBLIC_FIELDS}
    record.update(
        profile.public_values(row, profile.opened_phones(row["phones_encrypted"], cipher))
    )
    if row["id_number_encrypted"]:
        record["id_number"] = cipher.decrypt(row["id_number_encrypted"])
    if row["health_encrypted"]:
        health = HealthRecord.model_validate_json(cipher.decrypt(row["health_encrypted"]))
        record["health"] = health.model_dump(mode="json")
    return record


def consents(row: Any) -> dict[str, Any]:
    """Each consent the customer gave or withdrew, with its time and channel."""
    sms = (profile.public_values(row, [])["consents"] or profile.NO_CONSENTS)["sms"]
    return {
        "sms": sms,
        # Given in the store with the health questions: the file keeps its time, not a channel.
        "health": {
            "granted": row["health_consent_at"] is not None,
            "at": row["health_consent_at"],
            "channel": None,
        },
    }


async def _relations(session: AsyncSession, *, customer: Customer) -> list[dict[str, Any]]:
    """Who is family, as ids and kinds: the relatives' own files are theirs, not in this copy."""
    rows = await session.execute(
        select(
            col(CustomerRelation.related_customer_id),
            col(CustomerRelation.kind),
            col(CustomerRelation.created_at),
        )
        .where(
            col(CustomerRelation.store_id) == customer.store_id,
            col(CustomerRelation.customer_id) == customer.id,
        )
        .order_by(col(CustomerRelation.related_customer_id))
    )
    return [
        {"related_customer_id": related, "kind": kind, "since": since}
        for related, kind, since in rows.all()
    ]


def _money(value: Any) -> str:
    return f"{value:.2f}"


async def _purchases(
    session: AsyncSession, *, customer: Customer, cipher: FieldCipher
) -> list[dict[str, Any]]:
    """Every purchase, oldest first, with its lines, its refunds and what was acknowledged."""
    theirs = select(col(Purchase.id)).where(
        col(Purchase.store_id) == customer.store_id, col(Purchase.customer_id) == customer.id
    )
    purchases = (
        await session.execute(
            select(Purchase)
            .where(col(Purchase.id).in_(theirs))
            .order_by(col(Purchase.purchased_at), col(Purchase.id))
        )
    ).scalars()
    lines: dict[str, list[PurchaseLine]] = {}
    for line in (
        await session.execute(
            select(PurchaseLine)
            .where(col(PurchaseLine.purchase_id).in_(theirs))
            .order_by(col(PurchaseLine.id))
        )
    ).scalars():
        lines.setdefault(line.purchase_id, []).append(line)
    refund_lines: dict[str, list[PurchaseRefundLine]] = {}
    for refund_line in (
        await session.execute(
            select(PurchaseRefundLine)
            .where(col(PurchaseRefundLine.purchase_id).in_(theirs))
            .order_by(col(PurchaseRefundLine.id))
        )
    ).scalars():
        refund_lines.setdefault(refund_line.refund_id, []).append(refund_line)
    refunds: dict[str, list[dict[str, Any]]] = {}
    for refund in (
        await session.execute(
            select(PurchaseRefund)
            .where(col(PurchaseRefund.purchase_id).in_(theirs))
            .order_by(col(PurchaseRefund.refunded_at), col(PurchaseRefund.id))
        )
    ).scalars():
        refunds.setdefault(refund.purchase_id, []).append(
            {
                "id": refund.id,
                "reason": refund.reason,
                "note": refund.note,
                "total": _money(refund.total),
                "refunded_by": refund.refunded_by,
                "refunded_at": refund.refunded_at,
                "items": [
                    {
                        "sku": r.sku,
                        "qty": r.qty,
                        "unit_price": _money(r.unit_price),
                        "amount": _money(r.amount),
                    }
                    for r in refund_lines.get(refund.id, [])
                ],
            }
        )
    return [
        {
            "id": p.id,
            "store_id": p.store_id,
            "staff_id": p.staff_id,
            "member_event_id": p.member_event_id,
            "purchased_at": p.purchased_at,
            "total": _money(p.total),
            "items": [
                {
                    "sku": line.sku,
                    "qty": line.qty,
                    "unit_price": _money(line.unit_price),
                    "amount": _money(line.amount),
                }
                for line in lines.get(p.id, [])
            ],
            "refunds": refunds.get(p.id, []),
            "acknowledgement": _acknowledgement(p, cipher),
        }
        for p in purchases
    ]


def _acknowledgement(purchase: Purchase, cipher: FieldCipher) -> dict[str, Any] | None:
    """A sale despite contraindication warnings: who, when, and the matches whole."""
    if purchase.acknowledged_at is None:
        return None
    sealed = purchase.acknowledged_warnings_encrypted
    return {
        "by": purchase.acknowledged_by,
        "at": purchase.acknowledged_at,
        "warnings": [w.as_dict() for w in contraindications.unsealed(sealed, cipher)]
        if sealed
        else [],
    }


async def _merges(session: AsyncSession, *, customer: Customer) -> dict[str, Any]:
    """The merge pointers: the file this one was merged into, and the files merged into it."""
    merged_from = (
        await session.execute(
            select(col(Customer.id))
            .where(
                col(Customer.store_id) == customer.store_id,
                col(Customer.merged_into) == customer.id,
            )
            .order_by(col(Customer.id))
        )
    ).scalars()
    return {"merged_into": customer.merged_into, "merged_from": list(merged_from)}


def _imports(row: Any) -> dict[str, Any]:
    """Where the file came from: a spreadsheet import names itself in the file's source."""
    source = profile.public_values(row, [])["source"]
    return {"source": source, "from_import": bool(source and source.get("channel") == "import")}


# --- erasure -----------------------------------------------------------------------------------


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
