"""One spreadsheet row turned into a typed candidate, or into the errors that keep it out.

Pure functions: nothing here reads the database. Errors name the row as the spreadsheet shows it,
the API field, and what is wrong, so that a store can fix its sheet and import it again.
"""

import hashlib
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, tzinfo
from decimal import Decimal
from typing import TypeVar

from customer_service.imports.cells import (
    amount_of,
    clean_name,
    date_of,
    identifier_of,
    is_blank,
    phone_key,
    phone_texts,
    text_of,
    when_of,
    whole_number_of,
)
from customer_service.imports.codes import (
    SOURCE_CHANNELS,
    calendar_code,
    gender_code,
    source_channel_code,
)
from customer_service.imports.headers import Column, Columns
from customer_service.imports.sheets import Cell, SheetRow
from customer_service.money import to_cents

EARLIEST_BIRTHDAY = date(1900, 1, 1)
EARLIEST_PURCHASE = date(1980, 1, 1)
MAX_AGE = 130
MAX_NAME_LENGTH = 50
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_ID_NUMBER = re.compile(r"\d{17}[\dX]|\d{15}")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RowError:
    row: int
    field: str
    message: str

    def as_dict(self) -> dict[str, int | str]:
        return {"row": self.row, "field": self.field, "message": self.message}


@dataclass(frozen=True, slots=True)
class PhoneText:
    """A phone as written; `kind` is set when the column says (座机 → landline)."""

    number: str
    kind: str | None = None


# Not frozen: a frozen dataclass sets each of its fields through object.__setattr__, which is
# most of the cost of building one, and an import builds one per row.
@dataclass(slots=True)
class CustomerCandidate:
    row: int
    # Equal for rows naming the same person the same way (name, phones, birthday, ID number), so
    # that importing a sheet again finds the files the first import made.
    fingerprint: str
    name: str
    phones: tuple[PhoneText, ...] = ()
    gender: str | None = None
    birthday: date | None = None
    birthday_calendar: str | None = None
    approximate_age: int | None = None
    ethnicity: str | None = None
    email: str | None = None
    # The address as one text, to be split later, and the parts a sheet gave in their own columns.
    address: str | None = None
    province: str | None = None
    city: str | None = None
    district: str | None = None
    street: str | None = None
    id_number: str | None = None
    source_channel: str | None = None
    source_method: str | None = None
    # A name or a phone, resolved to a customer when the row is written.
    referrer: str | None = None
    wedding_anniversary: date | None = None
    notes: str | None = None
    # A staff member's name (服务代表), resolved when the row is written.
    owner: str | None = None
    external_id: str | None = None


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


class _Reading:
    """The cells of one row by field, and the errors met while reading them."""

    def __init__(self, row: SheetRow, columns: Columns) -> None:
        self.row = row
        self.columns_by_field = columns.by_field
        self.errors: list[RowError] = []

    def fail(self, field: str, message: str) -> None:
        self.errors.append(RowError(self.row.number, field, message))

    def cells(self, field: str) -> list[tuple[Column, Cell]]:
        """The non-blank cells of a field's columns, in sheet order."""
        found = []
        cells = self.row.cells
        for column in self.columns_by_field.get(field, ()):
            if column.index < len(cells):
                cell = cells[column.index]
                if not is_blank(cell):
                    found.append((column, cell))
        return found

    def first(self, field: str) -> tuple[Column, Cell] | None:
        cells = self.row.cells
        for column in self.columns_by_field.get(field, ()):
            if column.index < len(cells):
                cell = cells[column.index]
                if not is_blank(cell):
                    return column, cell
        return None

    def value(self, field: str, parse: Callable[[Cell], T]) -> T | None:
        found = self.first(field)
        if found is None:
            return None
        try:
            return parse(found[1])
        except ValueError as exc:
            self.fail(field, str(exc))
            return None

    def text(self, field: str) -> str | None:
        found = self.first(field)
        return None if found is None else text_of(found[1])

    def code(
        self, field: str, to_code: Callable[[str], str | None], codes: tuple[str, ...]
    ) -> str | None:
        text = self.text(field)
        if text is None:
            return None
        code = to_code(text)
        if code is None:
            self.fail(field, f"{text} is not one of {', '.join(codes)}")
        return code

    def date_between(self, field: str, earliest: date, latest: date) -> date | None:
        value = self.value(field, date_of)
        if value is not None and not earliest <= value <= latest:
            self.fail(field, f"{value.isoformat()} is not between {earliest} and {latest}")
            return None
        return value


def read_customer_row(
    row: SheetRow, columns: Columns, *, today: date
) -> CustomerCandidate | list[RowError]:
    """A customer file to create from one row, or every error the row has."""
    r = _Reading(row, columns)
    name = r.text("name")
    if name is None:
        r.fail("name", "a name is required")
    else:
        name = clean_name(name)
        if len(name) > MAX_NAME_LENGTH:
            r.fail("name", f"a name has at most {MAX_NAME_LENGTH} characters")
    phones = _phones(r)
    birthday, calendar = _birthday(r, today=today)
    approximate_age = r.value("approximate_age", whole_number_of)
    if approximate_age is not None and not 0 <= approximate_age <= MAX_AGE:
        r.fail("approximate_age", f"an age is between 0 and {MAX_AGE}")
    email = r.text("email")
    if email is not None and not _EMAIL.fullmatch(email):
        r.fail("email", f"{email} is not an email address")
    id_number = r.value("id_number", identifier_of)
    if id_number is not None:
        id_number = id_number.replace(" ", "").upper()
        if not _ID_NUMBER.fullmatch(id_number):
            r.fail("id_number", "an ID-card number has 17 digits and a check digit or X")
    candidate = CustomerCandidate(
        row=row.number,
        fingerprint="",
        name=name or "",
        phones=phones,
        gender=r.code("gender", gender_code, ("男", "女", "female", "male", "other")),
        birthday=birthday,
        birthday_calendar=calendar,
        approximate_age=approximate_age,
        ethnicity=r.text("ethnicity"),
        email=email,
        address=r.text("address"),
        province=r.text("address.province"),
        city=r.text("address.city"),
        district=r.text("address.district"),
        street=r.text("address.street"),
        id_number=id_number,
        source_channel=r.code("source.channel", source_channel_code, SOURCE_CHANNELS),
        source_method=r.text("source.method"),
        referrer=r.value("referrer", identifier_of),
        wedding_anniversary=r.date_between("wedding_anniversary", EARLIEST_BIRTHDAY, today),
        notes=_notes(r),
        owner=r.text("owner"),
        external_id=r.value("external_id", identifier_of),
    )
    if r.errors:
        return r.errors
    candidate.fingerprint = _fingerprint(
        "customer",
        re.sub(r"\s", "", candidate.name).casefold(),
        ",".join(sorted({phone_key(p.number) for p in phones})),
        birthday.isoformat() if birthday else "",
        id_number or "",
    )
    return candidate


def _phones(r: _Reading) -> tuple[PhoneText, ...]:
    phones: list[PhoneText] = []
    for field in ("phone", "phones"):
        for column, cell in r.cells(field):
            try:
                numbers = phone_texts(cell)
            except ValueError as exc:
                r.fail(field, str(exc))
                continue
            kind = column.meaning.implied("kind")
            phones.extend(PhoneText(number, kind) for number in numbers)
    if len(phones) < 2:
        return tuple(phones)
    # The same number in 手机 and 电话 is one phone.
    seen: set[str] = set()
    unique = []
    for phone in phones:
        key = phone_key(phone.number)
        if key not in seen:
            seen.add(key)
            unique.append(phone)
    return tuple(unique)


def _birthday(r: _Reading, *, today: date) -> tuple[date | None, str | None]:
    """The birthday and its calendar: a 农历生日 column says lunar for every row of it."""
    found = r.first("birthday")
    stated = r.code("birthday_calendar", calendar_code, ("公历", "农历", "solar", "lunar"))
    if found is None:
        return None, None
    column, _ = found
    birthday = r.date_between("birthday", EARLIEST_BIRTHDAY, today)
    implied = column.meaning.implied("birthday_calendar")
    if implied and stated and implied != stated:
        r.fail(
            "birthday_calendar",
            f"the column {column.header} holds {implied} birthdays but this row says {stated}",
        )
    return birthday, (implied or stated or "solar") if birthday else None


def _notes(r: _Reading) -> str | None:
    # Notes are kept as typed (no NFKC): they are read by people, not matched.
    found = r.first("notes")
    return str(found[1]).strip() if found else None


def read_purchase_row(
    row: SheetRow, columns: Columns, *, today: date, timezone: tzinfo
) -> PurchaseCandidate | list[RowError]:
    """A purchase line of an old till's history, or every error the row has.

    A date without a time is taken as the start of that day in the store's time zone.
    """
    r = _Reading(row, columns)
    customer_id = r.value("customer_id", identifier_of)
    external_id = r.value("external_id", identifier_of)
    phone = r.value("phone", _first_phone)
    if not (customer_id or external_id or phone) and not r.errors:
        r.fail("phone", "the customer's phone or customer_id is required")
    when = r.value("purchased_at", when_of)
    purchased_at = _in_zone(when, timezone) if when is not None else None
    if purchased_at is None and not r.cells("purchased_at"):
        r.fail("purchased_at", "the date of the purchase is required")
    elif purchased_at is not None and not EARLIEST_PURCHASE <= purchased_at.date() <= today:
        r.fail(
            "purchased_at",
            f"{purchased_at.date()} is not between {EARLIEST_PURCHASE} and {today}",
        )
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
    fingerprint = _fingerprint(
        "purchase",
        buyer,
        purchased_at.isoformat(),
        sku,
        str(qty),
        str(amount),
    )
    return PurchaseCandidate(
        row=row.number,
        fingerprint=fingerprint,
        purchased_at=purchased_at,
        sku=sku,
        qty=qty,
        amount=amount,
        customer_id=customer_id,
        external_id=external_id,
        phone=phone,
    )


def _first_phone(cell: Cell) -> str | None:
    numbers = phone_texts(cell)
    return numbers[0] if numbers else None


def _amount(r: _Reading, qty: int | None) -> Decimal | None:
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


def _fingerprint(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


class RepeatedRows:
    """Keys that keep the n-th identical row of one sheet apart from the first.

    Two equal till lines (same customer, day, product, quantity and amount) are two purchases:
    the second gets `fingerprint#2`, and importing the sheet again gives the same keys again.
    """

    def __init__(self) -> None:
        self._seen: Counter[str] = Counter()

    def key(self, fingerprint: str) -> str:
        self._seen[fingerprint] += 1
        count = self._seen[fingerprint]
        return fingerprint if count == 1 else f"{fingerprint}#{count}"
