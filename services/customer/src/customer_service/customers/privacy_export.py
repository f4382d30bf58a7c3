"""The customer's copy of everything the customer service holds on them (DOMAIN.md §11, PIPL
Art. 45): the whole file decrypted (it is their own copy), the family relations, every purchase
with its lines, refunds and acknowledged contraindications, the consents with their times and
channels, the files merged into this one, and where the file came from.

What the other services hold (engagement's tasks and visits, scoring's scores) is named, not
copied: ``ELSEWHERE``. The workbook form is customers/privacy_sheets.py's.
"""

from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_libs.field_crypto import FieldCipher
from crm_libs.principal import Principal
from customer_service.customers import profile
from customer_service.customers import service as customers
from customer_service.customers.models import Customer
from customer_service.customers.schemas import CustomerPublic, HealthRecord
from customer_service.customers.visibility import POLICY as SENSITIVE
from customer_service.purchases import contraindications
from customer_service.purchases.models import (
    Purchase,
    PurchaseLine,
    PurchaseRefund,
    PurchaseRefundLine,
)
from customer_service.relations.models import CustomerRelation

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
        "imports": await _imports(session, customer=customer, row=row),
        "changes": await _changes(session, customer=customer),
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


# The import jobs whose rows became this file or its purchases (imports/: a row's fingerprint
# names the record it became).
_IMPORT_JOBS = text(
    """
    SELECT j.id, j.kind, j.filename, j.created_by, j.created_at, j.finished_at,
           count(*) AS rows
    FROM import_fingerprint f JOIN import_job j ON j.id = f.job_id
    WHERE f.store_id = :store_id
      AND ((f.kind = 'customers' AND f.record_id = :customer_id)
           OR (f.kind = 'purchases' AND f.record_id IN (
               SELECT id FROM purchase WHERE store_id = :store_id AND customer_id = :customer_id)))
    GROUP BY j.id
    ORDER BY j.created_at, j.id
    """
)
# Changes that came without a request (a visit's collected fields): names, never values.
_CHANGES = text(
    """
    SELECT at, origin, origin_id, staff_id, occurred_at, changed, skipped, ignored, version
    FROM customer_change WHERE store_id = :store_id AND customer_id = :customer_id
    ORDER BY id
    """
)


async def _imports(session: AsyncSession, *, customer: Customer, row: Any) -> dict[str, Any]:
    """Where the file came from: its source, and the spreadsheet imports that wrote it or its
    purchases."""
    source = profile.public_values(row, [])["source"]
    params = {"store_id": customer.store_id, "customer_id": customer.id}
    jobs = [dict(job) for job in (await session.execute(_IMPORT_JOBS, params)).mappings()]
    return {
        "source": source,
        "from_import": any(j["kind"] == "customers" for j in jobs)
        or bool(source and source.get("channel") == "import"),
        "jobs": jobs,
    }


async def _changes(session: AsyncSession, *, customer: Customer) -> list[dict[str, Any]]:
    params = {"store_id": customer.store_id, "customer_id": customer.id}
    changes = [dict(change) for change in (await session.execute(_CHANGES, params)).mappings()]
    for change in changes:
        for name in ("changed", "skipped", "ignored"):
            if isinstance(change[name], str):  # jsonb as text, depending on the driver's codecs
                change[name] = orjson.loads(change[name])
    return changes
