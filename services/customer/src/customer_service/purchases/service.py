"""Recording purchases: the sale, its lines and its event in one transaction."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_libs.pagination import PageParams, keyset
from crm_libs.principal import Principal
from crm_libs.problems import InvalidField
from customer_service.customers import service as customers
from customer_service.money import to_cents
from customer_service.products import service as products
from customer_service.purchases import events
from customer_service.purchases.models import Purchase, PurchaseLine
from customer_service.purchases.schemas import PurchaseCreate
from customer_service.staff import service as staff
from customer_service.stores.models import Store


async def record(
    session: AsyncSession,
    *,
    principal: Principal,
    customer_id: str,
    purchase_in: PurchaseCreate,
    clock_skew: timedelta = timedelta(minutes=5),
) -> tuple[Purchase, list[PurchaseLine]]:
    """Record a sale to a customer of the caller's store and stage ``purchase.recorded``."""
    customer = await customers.get(session, principal=principal, customer_id=customer_id)
    store = await session.get(Store, customer.store_id)
    assert store is not None  # foreign key
    purchased_at = _aware(purchase_in.purchased_at, store.timezone)
    if purchased_at > datetime.now(UTC) + clock_skew:
        raise InvalidField("purchased_at", "lies in the future")
    # `is not None`, not truthiness: an empty id is an unknown staff member, not an absent one,
    # and must be refused here rather than by the foreign key at insert time.
    if purchase_in.staff_id is not None:
        await staff.get_serving(session, store_id=store.id, staff_id=purchase_in.staff_id)
    catalogue = await products.by_sku(session, skus=(i.sku for i in purchase_in.items))
    for index, item in enumerate(purchase_in.items):
        if item.sku not in catalogue:
            raise InvalidField(f"items.{index}.sku", f"unknown product {item.sku!r}")

    purchase = Purchase(
        store_id=store.id,
        customer_id=customer.id,
        staff_id=purchase_in.staff_id,
        member_event_id=purchase_in.member_event_id,
        purchased_at=purchased_at,
        total=Decimal("0.00"),
    )
    lines = []
    for item in purchase_in.items:
        product = catalogue[item.sku]
        unit_price = item.unit_price if item.unit_price is not None else product.unit_price
        lines.append(
            PurchaseLine(
                purchase_id=purchase.id,
                product_id=product.id,
                sku=product.sku,
                qty=item.qty,
                unit_price=to_cents(unit_price),
                amount=to_cents(unit_price * item.qty),
            )
        )
    purchase.total = sum((line.amount for line in lines), Decimal("0.00"))
    session.add(purchase)
    session.add_all(lines)
    # Staged before the flush, so the purchase, its lines (after it: foreign key order) and the
    # outbox row go in one flush; nothing the event carries comes from the database.
    events.purchase_recorded(
        session, purchase=purchase, lines=lines, products=catalogue, timezone=store.timezone
    )
    await session.flush()
    return purchase, lines


async def list_for_customer(
    session: AsyncSession, *, principal: Principal, customer_id: str, page: PageParams
) -> list[tuple[Purchase, list[PurchaseLine]]]:
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
    return [(p, by_purchase.get(p.id, [])) for p in purchases]


def _aware(moment: datetime, timezone: str) -> datetime:
    """A time without an offset is the store's local time (what staff type at the counter)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    return moment.astimezone(UTC)
