"""Recording purchases: the sale, its lines and its event in one transaction."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import Text, any_, bindparam, case, func, literal, literal_column, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_libs.db import driver_sql
from crm_libs.events.envelope import Topics
from crm_libs.field_crypto import FieldCipher
from crm_libs.ids import new_id
from crm_libs.pagination import PageParams, keyset
from crm_libs.principal import Principal
from crm_libs.problems import Conflict, InvalidField, NotFound
from customer_service.customers import service as customers
from customer_service.customers.models import Customer
from customer_service.member_events.models import KnownMemberEvent
from customer_service.membership import earning
from customer_service.membership.models import MemberAccount, MembershipRules
from customer_service.money import to_cents
from customer_service.products.models import Product
from customer_service.purchases import contraindications, events
from customer_service.purchases.models import Purchase, PurchaseLine, PurchaseRefundLine
from customer_service.purchases.schemas import PurchaseCreate
from customer_service.staff.models import Staff
from customer_service.stores.models import Store


@dataclass(frozen=True, slots=True)
class SaleLine:
    product_id: str
    sku: str
    category: str
    days_per_unit: int
    qty: int
    unit_price: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Sale:
    """A recorded purchase: what was written, and what its answer and its event say."""

    id: str
    store_id: str
    customer_id: str
    staff_id: str | None
    member_event_id: str | None
    purchased_at: datetime
    total: Decimal
    timezone: str
    lines: list[SaleLine]
    # Sold despite contraindication warnings: who, when, and the warnings as they were told.
    acknowledgement: dict[str, Any] | None = None
    # The matches themselves, for the audit entry (never answered whole to a role that may not
    # see health data: ``acknowledgement`` holds what the seller was told).
    acknowledged: tuple[contraindications.HealthWarning, ...] = ()

    def public_json(self) -> bytes:
        """PurchasePublic's JSON form (money as two-place strings, times in UTC ending in "Z"),
        serialised once without building the model (tests/test_purchase_json.py keeps the two
        equal)."""
        return orjson.dumps(
            {
                "id": self.id,
                "store_id": self.store_id,
                "customer_id": self.customer_id,
                "staff_id": self.staff_id,
                "member_event_id": self.member_event_id,
                "purchased_at": self.purchased_at,
                "total": f"{self.total:.2f}",
                "items": [
                    {
                        "sku": line.sku,
                        "qty": line.qty,
                        "unit_price": f"{line.unit_price:.2f}",
                        "amount": f"{line.amount:.2f}",
                        "refunded_qty": 0,
                        "refunded_amount": "0.00",
                    }
                    for line in self.lines
                ],
                "refunded_total": "0.00",
                "acknowledgement": self.acknowledgement,
            },
            option=orjson.OPT_UTC_Z,
        )


# The customer (in the caller's store), its store's time zone, its health file (decrypted only
# when a product of the sale lists contraindications or allergens) and, in the same round trip,
# the store of the staff member named on the sale (NULL: no such member, or none named) and the
# member event it names, if the customer's store has it (NULL: unknown there, or none named).
_STAFF_STORE = select(col(Staff.store_id)).where(col(Staff.id) == bindparam("staff_id"))
_MEMBER_EVENT = select(
    case(
        (col(KnownMemberEvent.cancelled_at).is_not(None), literal("cancelled")),
        else_=literal("scheduled"),
    )
).where(
    col(KnownMemberEvent.event_id) == bindparam("member_event_id"),
    col(KnownMemberEvent.store_id) == col(Customer.store_id),
)
_SELLER = (
    select(
        col(Customer.store_id),
        col(Store.timezone),
        col(Customer.health_encrypted),
        col(Customer.health_consent_at),
        col(Customer.merged_into),
        col(Customer.status),
        _STAFF_STORE.scalar_subquery().label("staff_store_id"),
        _MEMBER_EVENT.scalar_subquery().label("member_event"),
        # Membership (membership/earning.py): the store's rules (NULL: the defaults), the
        # member's account and level, and the 12-month spend before this sale.
        col(MembershipRules.points_per_yuan),
        col(MembershipRules.points_expire_months),
        col(MembershipRules.levels),
        col(MemberAccount.customer_id).label("account_id"),
        col(MemberAccount.level),
        literal_column(
            earning.spend_12m_sql(store="customer.store_id", customer="customer.id")
        ).label("spend_12m"),
    )
    .join(Store, col(Store.id) == col(Customer.store_id))
    .outerjoin(MembershipRules, col(MembershipRules.store_id) == col(Customer.store_id))
    .outerjoin(MemberAccount, col(MemberAccount.customer_id) == col(Customer.id))
    .where(col(Customer.id) == bindparam("customer_id"))
)
_SELLER_IN_STORE = _SELLER.where(col(Customer.store_id) == bindparam("store_id"))
_CATALOGUE = select(
    col(Product.sku),
    col(Product.id),
    col(Product.category),
    col(Product.unit_price),
    col(Product.days_per_unit),
    col(Product.contraindications),
    col(Product.allergens),
).where(col(Product.sku) == any_(bindparam("skus", type_=ARRAY(Text))))

# The purchase, its lines, its outbox row (crm_libs.events.outbox's table, the relay's to
# publish) and the points it earns (membership/earning.py's CTEs) in one statement: atomic by
# itself, so a sale needs no BEGIN and COMMIT of its own, and inside a caller's transaction it
# is part of that one. The lines' foreign key is checked at
# the end of the statement, when the purchase row is there.
_INSERT_SALE = (
    """
    WITH sale AS (
        INSERT INTO purchase
            (id, store_id, customer_id, staff_id, member_event_id, purchased_at, total,
             acknowledged_by, acknowledged_at, acknowledged_warnings_encrypted)
        VALUES ($1::text, $2::text, $3::text, $4::text, $5::text, $6::timestamptz, $7::numeric,
                $16::text, $17::timestamptz, $18::text)
    ), sale_lines AS (
        INSERT INTO purchase_line (purchase_id, product_id, sku, qty, unit_price, amount)
        SELECT $1::text, line.*
        FROM unnest($8::text[], $9::text[], $10::int[], $11::numeric[], $12::numeric[]) AS line
    ), prospect AS (
        -- A prospect's first purchase ends its pipeline (DOMAIN.md §1): one row by key, and
        -- nothing at all once the file has bought.
        UPDATE customer SET prospect_stage = 'bought', version = version + 1
        WHERE id = $3::text AND prospect_stage IS DISTINCT FROM 'bought'
    )"""  # noqa: S608 - constants
    + earning.SALE_CTES
    + """
    INSERT INTO outbox_event (event_id, topic, key, envelope)
    VALUES ($13::text, $14::text, $3::text, $15::jsonb)
"""
)


async def record(
    conn: Any,
    *,
    principal: Principal,
    customer_id: str,
    purchase_in: PurchaseCreate,
    cipher: FieldCipher,
    clock_skew: timedelta = timedelta(minutes=5),
) -> Sale:
    """Record a sale to a customer of the caller's store and stage ``purchase.recorded``.

    ``conn`` is a driver connection (``crm_libs.db.request_connection``): three statements,
    two reads and the write (the points earned and a level moved included), which commits by
    itself or with the caller's open transaction.
    A product meeting the customer's health file refuses the sale
    (``contraindications.WarningsFound``, nothing written) unless ``acknowledge_warnings``;
    then the acknowledgement is kept on the purchase.
    """
    scope = principal.store_scope()
    sql, args = driver_sql(
        _SELLER if scope is None else _SELLER_IN_STORE,
        {
            "customer_id": customer_id,
            "store_id": scope,
            "staff_id": purchase_in.staff_id,
            "member_event_id": purchase_in.member_event_id,
        },
    )
    seller = await conn.fetchrow(sql, *args)
    if seller is None:
        raise NotFound("No such customer")
    if seller["merged_into"] is not None:
        # A pointer (customers/merge.py): its purchases moved to the survivor, and so do sales.
        raise Conflict(
            f"The file was merged into {seller['merged_into']}: record the purchase there",
            errors=[{"field": "customer_id", "message": f"merged_into {seller['merged_into']}"}],
        )
    if seller["status"] == customers.ERASED:
        # Anonymised for good (customers/privacy.py): a new sale would tie fresh behaviour to
        # the person the file no longer names.
        raise Conflict("The file was erased: a sale can no longer be recorded on it")
    timezone: str = seller["timezone"]
    purchased_at = _aware(purchase_in.purchased_at, timezone)
    if purchased_at > datetime.now(UTC) + clock_skew:
        raise InvalidField("purchased_at", "lies in the future")
    # `is not None`, not truthiness: an empty id is an unknown staff member, not an absent one,
    # and must be refused here rather than by the foreign key at insert time.
    if purchase_in.staff_id is not None and seller["staff_store_id"] != seller["store_id"]:
        raise InvalidField("staff_id", "unknown staff member for this store")
    if purchase_in.member_event_id is not None:
        # Known from crm.engagement.v1 (member_events/consumer.py), not asked of engagement: a
        # sale goes on while engagement is down.
        if seller["member_event"] is None:
            raise InvalidField("member_event_id", "no member event of the customer's store")
        if seller["member_event"] == "cancelled":
            raise InvalidField("member_event_id", "the member event was cancelled")
    sql, args = driver_sql(_CATALOGUE, {"skus": list({i.sku for i in purchase_in.items})})
    catalogue = {row["sku"]: row for row in await conn.fetch(sql, *args)}
    for index, item in enumerate(purchase_in.items):
        if item.sku not in catalogue:
            raise InvalidField(f"items.{index}.sku", f"unknown product {item.sku!r}")
    warnings = contraindications.check(
        seller, [catalogue[sku] for sku in dict.fromkeys(i.sku for i in purchase_in.items)], cipher
    )
    if warnings and not purchase_in.acknowledge_warnings:
        raise contraindications.WarningsFound(warnings)
    acknowledged_at = datetime.now(UTC) if warnings else None

    lines = []
    for item in purchase_in.items:
        product = catalogue[item.sku]
        unit_price = item.unit_price if item.unit_price is not None else product["unit_price"]
        lines.append(
            SaleLine(
                product_id=product["id"],
                sku=product["sku"],
                category=product["category"],
                days_per_unit=product["days_per_unit"],
                qty=item.qty,
                unit_price=to_cents(unit_price),
                amount=to_cents(unit_price * item.qty),
            )
        )
    sale = Sale(
        id=new_id(),
        store_id=seller["store_id"],
        customer_id=customer_id,
        staff_id=purchase_in.staff_id,
        member_event_id=purchase_in.member_event_id,
        purchased_at=purchased_at,
        total=sum((line.amount for line in lines), Decimal("0.00")),
        timezone=timezone,
        lines=lines,
        acknowledgement=None
        if acknowledged_at is None
        else {
            "by": principal.subject,
            "at": acknowledged_at,
            "warnings": contraindications.shown_to(principal.role, warnings),
        },
        acknowledged=tuple(warnings),
    )
    event = events.purchase_recorded(sale)
    earned = earning.for_sale(
        seller,
        store_id=sale.store_id,
        customer_id=customer_id,
        total=sale.total,
        purchased_at=purchased_at,
        timezone=timezone,
        now=datetime.now(UTC),
    )
    await conn.execute(
        _INSERT_SALE,
        sale.id,
        sale.store_id,
        sale.customer_id,
        sale.staff_id,
        sale.member_event_id,
        sale.purchased_at,
        sale.total,
        [line.product_id for line in lines],
        [line.sku for line in lines],
        [line.qty for line in lines],
        [line.unit_price for line in lines],
        [line.amount for line in lines],
        str(event.event_id),
        Topics.PURCHASES,
        event.to_bytes().decode(),
        principal.subject if warnings else None,
        acknowledged_at,
        contraindications.sealed(warnings, cipher) if warnings else None,
        *earned.parameters(),
    )
    return sale


# What refunds took of each line: (quantity, amount).
Refunded = dict[int, tuple[int, Decimal]]


async def list_for_customer(
    session: AsyncSession, *, principal: Principal, customer_id: str, page: PageParams
) -> list[tuple[Purchase, list[PurchaseLine], Refunded]]:
    customer = await customers.get(session, principal=principal, customer_id=customer_id)
    query = select(Purchase).where(
        col(Purchase.store_id) == customer.store_id, col(Purchase.customer_id) == customer.id
    )
    purchases = list((await session.execute(keyset(query, col(Purchase.id), page))).scalars())
    if not purchases:
        return []
    line_rows = await session.execute(
        select(PurchaseLine)
        .where(col(PurchaseLine.purchase_id).in_([p.id for p in purchases]))
        .order_by(col(PurchaseLine.id))
    )
    by_purchase: dict[str, list[PurchaseLine]] = {}
    for line in line_rows.scalars():
        by_purchase.setdefault(line.purchase_id, []).append(line)
    refund_rows = await session.execute(
        select(
            col(PurchaseRefundLine.purchase_line_id),
            func.sum(PurchaseRefundLine.qty),
            func.sum(PurchaseRefundLine.amount),
        )
        .where(col(PurchaseRefundLine.purchase_id).in_([p.id for p in purchases]))
        .group_by(col(PurchaseRefundLine.purchase_line_id))
    )
    refunded: Refunded = {line_id: (int(qty), amount) for line_id, qty, amount in refund_rows}
    return [(p, by_purchase.get(p.id, []), refunded) for p in purchases]


def _aware(moment: datetime, timezone: str) -> datetime:
    """A time without an offset is the store's local time (what staff type at the counter)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    return moment.astimezone(UTC)
