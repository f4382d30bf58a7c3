"""Refunds and returns: goods brought back, the money they cost returned, and scoring told.

Never more than was bought: what is left of each line counts earlier refunds, read under a lock
on the purchase row, so concurrent refunds of one purchase queue behind each other and the later
one sees what the earlier one took. A refund, its lines, its ``purchase.refunded`` outbox row
and the reversal of the points the sale earned are one transaction.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from crm_libs.events.envelope import Topics
from crm_libs.ids import new_id
from crm_libs.principal import Principal
from crm_libs.problems import Conflict, InvalidField, NotFound
from customer_service.membership import ledger
from customer_service.membership.earning import SPEND_WINDOW
from customer_service.money import to_cents
from customer_service.purchases import events
from customer_service.purchases.schemas import RefundCreate


@dataclass(frozen=True, slots=True)
class RefundLine:
    purchase_line_id: int
    sku: str
    category: str
    days_per_unit: int
    qty: int
    unit_price: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Refund:
    """A recorded refund: what was written, and what its answer and its event say."""

    id: str
    purchase_id: str
    store_id: str
    customer_id: str
    reason: str
    note: str | None
    total: Decimal
    refunded_by: str
    refunded_at: datetime
    purchased_at: datetime
    timezone: str
    lines: list[RefundLine]

    def public_json(self) -> bytes:
        """RefundPublic's JSON form, serialised once."""
        return orjson.dumps(
            {
                "id": self.id,
                "purchase_id": self.purchase_id,
                "store_id": self.store_id,
                "customer_id": self.customer_id,
                "reason": self.reason,
                "note": self.note,
                "total": f"{self.total:.2f}",
                "refunded_by": self.refunded_by,
                "refunded_at": self.refunded_at,
                "items": [
                    {
                        "sku": line.sku,
                        "qty": line.qty,
                        "unit_price": f"{line.unit_price:.2f}",
                        "amount": f"{line.amount:.2f}",
                    }
                    for line in self.lines
                ],
            },
            option=orjson.OPT_UTC_Z,
        )


# The purchase in the caller's store (NULL scope: head office, any store), locked until the
# refund commits: a second refund of it waits here, then reads what the first one took.
_PURCHASE = """
    SELECT p.id, p.store_id, p.customer_id, p.purchased_at, p.total, s.timezone,
           (SELECT coalesce(sum(r.total), 0) FROM purchase_refund r
            WHERE r.purchase_id = p.id) AS refunded_before
    FROM purchase p JOIN store s ON s.id = p.store_id
    WHERE p.id = $1::text AND ($2::text IS NULL OR p.store_id = $2::text)
    FOR UPDATE OF p
"""
# Each line with what earlier refunds took of it, in the order it was sold.
_LINES = """
    SELECT l.id, l.sku, l.qty, l.unit_price, pr.category, pr.days_per_unit,
           COALESCE(r.qty, 0)::int AS refunded
    FROM purchase_line l
    JOIN product pr ON pr.id = l.product_id
    LEFT JOIN (
        SELECT purchase_line_id, sum(qty) AS qty FROM purchase_refund_line
        WHERE purchase_id = $1::text GROUP BY purchase_line_id
    ) r ON r.purchase_line_id = l.id
    WHERE l.purchase_id = $1::text
    ORDER BY l.id
"""
# The refund, its lines and its outbox row in one statement, like the sale's.
_INSERT_REFUND = """
    WITH refund AS (
        INSERT INTO purchase_refund
            (id, purchase_id, store_id, customer_id, reason, note, total, refunded_by, refunded_at)
        VALUES ($1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::numeric,
                $8::text, $9::timestamptz)
    ), refund_lines AS (
        INSERT INTO purchase_refund_line
            (refund_id, purchase_id, purchase_line_id, sku, qty, unit_price, amount)
        SELECT $1::text, $2::text, line.*
        FROM unnest($10::bigint[], $11::text[], $12::int[], $13::numeric[], $14::numeric[])
            AS line
    )
    INSERT INTO outbox_event (event_id, topic, key, envelope)
    VALUES ($15::text, $16::text, $4::text, $17::jsonb)
"""


async def refund(
    conn: Any, *, principal: Principal, purchase_id: str, refund_in: RefundCreate
) -> Refund:
    """Refund a purchase of the caller's store, whole (no ``items``) or by product, and stage
    ``purchase.refunded``.

    ``conn`` is a driver connection; the refund is its own transaction (a savepoint inside the
    caller's, when an ``Idempotency-Key`` opened one).
    """
    async with conn.transaction():
        purchase = await conn.fetchrow(_PURCHASE, purchase_id, principal.store_scope())
        if purchase is None:
            raise NotFound("No such purchase")
        sold = await conn.fetch(_LINES, purchase_id)
        lines = _whole(sold) if refund_in.items is None else _by_product(sold, refund_in)
        result = Refund(
            id=new_id(),
            purchase_id=purchase_id,
            store_id=purchase["store_id"],
            customer_id=purchase["customer_id"],
            reason=refund_in.reason.value,
            note=refund_in.note,
            total=sum((line.amount for line in lines), Decimal("0.00")),
            refunded_by=principal.subject,
            refunded_at=datetime.now(UTC),
            purchased_at=purchase["purchased_at"],
            timezone=purchase["timezone"],
            lines=lines,
        )
        event = events.purchase_refunded(result)
        await conn.execute(
            _INSERT_REFUND,
            result.id,
            result.purchase_id,
            result.store_id,
            result.customer_id,
            result.reason,
            result.note,
            result.total,
            result.refunded_by,
            result.refunded_at,
            [line.purchase_line_id for line in lines],
            [line.sku for line in lines],
            [line.qty for line in lines],
            [line.unit_price for line in lines],
            [line.amount for line in lines],
            str(event.event_id),
            Topics.PURCHASES,
            event.to_bytes().decode(),
        )
        # The points the sale earned, taken back in proportion (membership/ledger.py).
        await ledger.reverse_for_refund(
            conn,
            purchase_id=purchase_id,
            store_id=result.store_id,
            customer_id=result.customer_id,
            purchase_total=purchase["total"],
            refunded_before=purchase["refunded_before"],
            refunded_now=result.total,
            reason=result.reason,
            counted_in_spend=purchase["purchased_at"] > result.refunded_at - SPEND_WINDOW,
        )
    return result


def _refund_line(sold: Any, qty: int) -> RefundLine:
    # The price the customer paid on this purchase, not today's catalogue price.
    return RefundLine(
        purchase_line_id=sold["id"],
        sku=sold["sku"],
        category=sold["category"],
        days_per_unit=sold["days_per_unit"],
        qty=qty,
        unit_price=sold["unit_price"],
        amount=to_cents(sold["unit_price"] * qty),
    )


def _whole(sold: list[Any]) -> list[RefundLine]:
    """Whatever is left of every line."""
    lines = [_refund_line(s, s["qty"] - s["refunded"]) for s in sold if s["qty"] > s["refunded"]]
    if not lines:
        raise Conflict("This purchase was already refunded in full: nothing is left to refund")
    return lines


def _by_product(sold: list[Any], refund_in: RefundCreate) -> list[RefundLine]:
    """The requested quantities, taken from the product's lines in the order they were sold;
    409 naming each product asked for beyond what is left of it."""
    assert refund_in.items is not None
    wanted: dict[str, int] = {}
    for index, item in enumerate(refund_in.items):
        if not any(s["sku"] == item.sku for s in sold):
            raise InvalidField(f"items.{index}.sku", f"{item.sku!r} is not on this purchase")
        wanted[item.sku] = wanted.get(item.sku, 0) + item.qty
    over = []
    lines = []
    for sku, qty in wanted.items():
        of_sku = [s for s in sold if s["sku"] == sku]
        bought = sum(s["qty"] for s in of_sku)
        refunded = sum(s["refunded"] for s in of_sku)
        if qty > bought - refunded:
            over.append(
                {
                    "field": f"items.{_first_index(refund_in, sku)}.qty",
                    "message": f"{sku}: {bought} bought, {refunded} already refunded, "
                    f"{bought - refunded} left to refund; {qty} asked",
                }
            )
            continue
        for s in of_sku:
            take = min(qty, s["qty"] - s["refunded"])
            if take > 0:
                lines.append(_refund_line(s, take))
                qty -= take
    if over:
        raise Conflict(
            "Never more than was bought: " + "; ".join(e["message"] for e in over), errors=over
        )
    return lines


def _first_index(refund_in: RefundCreate, sku: str) -> int:
    assert refund_in.items is not None
    return next(i for i, item in enumerate(refund_in.items) if item.sku == sku)
