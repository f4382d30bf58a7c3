"""The family's purchases viewed together (家族式购买): the customer's and their relatives'.

Newest first, so the cursor carries the last purchase's time and id (a time alone is not unique).
A family is a handful of files with tens of purchases each: the store's purchase index finds
them by customer, and sorting them by time costs nothing worth an index of its own.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_libs.pagination import Page, PageParams, encode_cursor
from crm_libs.principal import Principal
from crm_libs.problems import ProblemError
from customer_service.purchases.models import Purchase, PurchaseLine
from customer_service.relations import service
from customer_service.relations.models import CustomerRelation
from customer_service.relations.schemas import FamilyPurchaseItem, FamilyPurchasePublic

SELF = "self"


@dataclass(frozen=True)
class _After:
    purchased_at: datetime
    purchase_id: str


def _cursor_of(purchase: Purchase) -> str:
    return encode_cursor(f"{purchase.purchased_at.isoformat()}|{purchase.id}")


def _after(params: PageParams) -> _After | None:
    """Where the page starts, from the cursor ``page_params`` decoded (its version checked)."""
    if params.after is None:
        return None
    at, _, purchase_id = params.after.partition("|")
    try:
        return _After(datetime.fromisoformat(at), purchase_id)
    except ValueError as exc:
        raise ProblemError("The cursor is not one this API issued", status=400) from exc


async def purchases(
    session: AsyncSession, *, principal: Principal, customer_id: str, page: PageParams
) -> Page[FamilyPurchasePublic]:
    """One page of the purchases of a visible file and of every file related to it."""
    after = _after(page)
    customer = await service.visible_file(session, principal=principal, customer_id=customer_id)
    store_id = customer.store_id
    family: dict[str, str] = {customer.id: SELF}
    relatives = await session.execute(
        select(col(CustomerRelation.related_customer_id), col(CustomerRelation.kind)).where(
            col(CustomerRelation.store_id) == store_id,
            col(CustomerRelation.customer_id) == customer.id,
        )
    )
    family.update(dict(relatives.tuples().all()))
    query = (
        select(Purchase)
        .where(
            col(Purchase.store_id) == store_id,
            col(Purchase.customer_id).in_(list(family)),
        )
        .order_by(col(Purchase.purchased_at).desc(), col(Purchase.id).desc())
        .limit(page.limit + 1)
    )
    if after is not None:
        query = query.where(
            tuple_(col(Purchase.purchased_at), col(Purchase.id))
            < tuple_(after.purchased_at, after.purchase_id)
        )
    found = list((await session.execute(query)).scalars())
    shown = found[: page.limit]
    lines: dict[str, list[PurchaseLine]] = defaultdict(list)
    if shown:
        rows = await session.execute(
            select(PurchaseLine)
            .join(Purchase, col(Purchase.id) == col(PurchaseLine.purchase_id))
            .where(
                col(Purchase.store_id) == store_id,
                col(PurchaseLine.purchase_id).in_([p.id for p in shown]),
            )
            .order_by(col(PurchaseLine.id))
        )
        for line in rows.scalars():
            lines[line.purchase_id].append(line)
    items = [
        FamilyPurchasePublic(
            id=p.id,
            customer_id=p.customer_id,
            kind=family[p.customer_id],  # a kind, or "self"
            staff_id=p.staff_id,
            purchased_at=p.purchased_at,
            total=p.total,
            items=[
                FamilyPurchaseItem(
                    sku=ln.sku, qty=ln.qty, unit_price=ln.unit_price, amount=ln.amount
                )
                for ln in lines[p.id]
            ],
        )
        for p in shown
    ]
    more = len(found) > page.limit
    return Page[FamilyPurchasePublic](
        items=items, next_cursor=_cursor_of(shown[-1]) if more and shown else None
    )
