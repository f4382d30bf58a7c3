"""A row of an old till's purchase history read into a purchase line to record."""

from dataclasses import dataclass
from datetime import date, datetime, time, tzinfo
from decimal import Decimal

from customer_service.imports.cells import (
    amount_of,
    identifier_of,
    phone_key,
    phone_texts,
    time_of,
    when_of,
    whole_number_of,
)
from customer_service.imports.headers import Columns
from customer_service.imports.rows import RowError, RowReading, fingerprint
from customer_service.imports.sheets import Cell, SheetRow
from customer_service.money import to_cents

EARLIEST_PURCHASE = date(1980, 1, 1)


@dataclass(slots=True)
class PurchaseCandidate:
    row: int
    fingerprint: str
    purchased_at: datetime
    sku: str
    qty: int
    amount: Decimal
    # Who bought: the first of these that finds a customer.
    customer_id: str | None = None
    external_id: str | None = None
    phone: str | None = None


def read_purchase_row(
    row: SheetRow, columns: Columns, *, today: date, timezone: tzinfo
) -> PurchaseCandidate | list[RowError]:
    """A purchase line of an old till's history, or every error the row has.

    A date without a time is taken as the start of that day in the store's time zone.
    """
    r = RowReading(row, columns)
    customer_id = r.value("customer_id", identifier_of)
    external_id = r.value("external_id", identifier_of)
    phone = r.value("phone", _first_phone)
    if not (customer_id or external_id or phone) and not r.errors:
        r.fail("phone", "the customer's phone or customer_id is required")
    purchased_at = _purchased_at(r, timezone=timezone, today=today)
    sku = r.value("sku", identifier_of)
    if sku is None and not r.cells("sku"):
        r.fail("sku", "the product's sku is required")
    qty = r.value("qty", whole_number_of)
    if qty is None and not r.cells("qty"):
        r.fail("qty", "the quantity is required")
    elif qty is not None and qty <= 0:
        r.fail("qty", "the quantity is at least 1 (record refunds as refunds)")
        qty = None
    amount = _amount(r, qty)
    if r.errors or purchased_at is None or sku is None or qty is None or amount is None:
        return r.errors
    if customer_id:
        buyer = f"customer_id:{customer_id}"
    elif external_id:
        buyer = f"external_id:{external_id}"
    else:
        buyer = f"phone:{phone_key(phone or '')}"
    key = fingerprint(
        "purchase",
        buyer,
        purchased_at.isoformat(),
        sku,
        str(qty),
        str(amount),
    )
    return PurchaseCandidate(
        row=row.number,
        fingerprint=key,
        purchased_at=purchased_at,
        sku=sku,
        qty=qty,
        amount=amount,
        customer_id=customer_id,
        external_id=external_id,
        phone=phone,
    )


def _purchased_at(r: RowReading, *, timezone: tzinfo, today: date) -> datetime | None:
    """When: one date or date-and-time column, or a date column and a time column (销售日期 and
    销售时间, as many tills export them)."""
    day: date | None = None
    clock: time | None = None
    for _, cell in r.cells("purchased_at"):
        at = time_of(cell)
        if at is not None:
            clock = clock or at
        elif day is None:
            try:
                day = when_of(cell)
            except ValueError as exc:
                r.fail("purchased_at", str(exc))
                return None
    if day is None:
        r.fail("purchased_at", "the date of the purchase is required")
        return None
    if clock is not None and not isinstance(day, datetime):
        day = datetime.combine(day, clock)
    purchased_at = _in_zone(day, timezone)
    if not EARLIEST_PURCHASE <= purchased_at.date() <= today:
        r.fail(
            "purchased_at", f"{purchased_at.date()} is not between {EARLIEST_PURCHASE} and {today}"
        )
        return None
    return purchased_at


def _first_phone(cell: Cell) -> str | None:
    numbers = phone_texts(cell)
    return numbers[0] if numbers else None


def _amount(r: RowReading, qty: int | None) -> Decimal | None:
    """The line's total: the amount column, or the unit price times the quantity."""
    if r.cells("amount"):
        return r.value("amount", amount_of)
    unit_price = r.value("unit_price", amount_of)
    if unit_price is None:
        if not r.cells("unit_price"):
            r.fail("amount", "the amount is required")
        return None
    return to_cents(unit_price * qty) if qty is not None else None


def _in_zone(when: date | datetime, zone: tzinfo) -> datetime:
    if isinstance(when, datetime):
        return when if when.tzinfo else when.replace(tzinfo=zone)
    return datetime.combine(when, time(), tzinfo=zone)
