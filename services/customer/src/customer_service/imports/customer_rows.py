"""A row of a customers sheet (《顾客关系管理表》) read into a customer file to create."""

import re
from dataclasses import dataclass
from datetime import date

from customer_service.imports.cells import (
    clean_name,
    identifier_of,
    phone_key,
    phone_texts,
    whole_number_of,
)
from customer_service.imports.codes import (
    SOURCE_CHANNELS,
    calendar_code,
    gender_code,
    source_channel_code,
)
from customer_service.imports.headers import Columns
from customer_service.imports.rows import RowError, RowReading, fingerprint
from customer_service.imports.sheets import SheetRow

EARLIEST_BIRTHDAY = date(1900, 1, 1)
MAX_AGE = 130
MAX_NAME_LENGTH = 50
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_ID_NUMBER = re.compile(r"\d{17}[\dX]|\d{15}")
# A lunar birthday in a leap month (闰月), as the API writes it (1944-L04-04) or with 闰 for L;
# no solar date reads so, so the cell is kept as that text and checked against its year later.
_LEAP_MONTH = re.compile(
    r"\s*(\d{4})\s*[-/.年]?\s*(?:L|闰)\s*(\d{1,2})\s*[-/.月]?\s*(\d{1,2})\s*日?\s*", re.IGNORECASE
)


# Not frozen, as CustomerCandidate below: one per phone of every row.
@dataclass(slots=True)
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
    # A lunar leap month's day is the API's text (YYYY-LMM-DD): no date holds it.
    birthday: date | str | None = None
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


def read_customer_row(
    row: SheetRow, columns: Columns, *, today: date
) -> CustomerCandidate | list[RowError]:
    """A customer file to create from one row, or every error the row has."""
    r = RowReading(row, columns)
    name = r.text("name")
    if name is None:
        r.fail("name", "a name is required")
    else:
        name = clean_name(name)
        if len(name) > MAX_NAME_LENGTH:
            r.fail("name", f"a name has at most {MAX_NAME_LENGTH} characters")
    phones = _phones(r)
    birthday, calendar = _birthday(r, today=today)
    candidate = CustomerCandidate(
        row=row.number,
        fingerprint="",
        name=name or "",
        phones=phones,
        birthday=birthday,
        birthday_calendar=calendar,
    )
    # A sheet has a handful of the two dozen fields a row may hold: the others are passed over
    # (a field without a column reads as nothing and fails nothing), and those it has are read
    # in this order, which is the order of a row's errors.
    present = columns.by_field
    if "approximate_age" in present:
        age = r.value("approximate_age", whole_number_of)
        if age is not None and not 0 <= age <= MAX_AGE:
            r.fail("approximate_age", f"an age is between 0 and {MAX_AGE}")
        candidate.approximate_age = age
    if "email" in present:
        email = r.text("email")
        if email is not None and not _EMAIL.fullmatch(email):
            r.fail("email", f"{email} is not an email address")
        candidate.email = email
    id_number = None
    if "id_number" in present:
        id_number = r.value("id_number", identifier_of)
        if id_number is not None:
            id_number = id_number.replace(" ", "").upper()
            if not _ID_NUMBER.fullmatch(id_number):
                r.fail("id_number", "an ID-card number has 17 digits and a check digit or X")
        candidate.id_number = id_number
    if "gender" in present:
        candidate.gender = r.code("gender", gender_code, ("男", "女", "female", "male", "other"))
    for attribute, field in _TEXT_FIELDS:
        if field in present:
            setattr(candidate, attribute, r.text(field))
    if "source.channel" in present:
        candidate.source_channel = r.code("source.channel", source_channel_code, SOURCE_CHANNELS)
    if "referrer" in present:
        candidate.referrer = r.value("referrer", identifier_of)
    if "wedding_anniversary" in present:
        candidate.wedding_anniversary = r.date_between(
            "wedding_anniversary", EARLIEST_BIRTHDAY, today
        )
    if "notes" in present:
        candidate.notes = _notes(r)
    if "owner" in present:
        candidate.owner = r.text("owner")
    if "external_id" in present:
        candidate.external_id = r.value("external_id", identifier_of)
    if r.errors:
        return r.errors
    candidate.fingerprint = fingerprint(
        "customer",
        _fingerprint_name(candidate.name),
        ",".join(sorted({phone_key(p.number) for p in phones})),
        (birthday if isinstance(birthday, str) else birthday.isoformat()) if birthday else "",
        id_number or "",
    )
    return candidate


# The candidate's attributes read as plain text, and their fields (no error comes of reading
# them, so where they are read among the others changes nothing).
_TEXT_FIELDS = (
    ("ethnicity", "ethnicity"),
    ("address", "address"),
    ("province", "address.province"),
    ("city", "address.city"),
    ("district", "address.district"),
    ("street", "address.street"),
    ("source_method", "source.method"),
)
_SPACE = re.compile(r"\s")


def _fingerprint_name(name: str) -> str:
    """The name without spaces, case folded; a name of letters alone has no space to drop."""
    return (name if name.isalpha() else _SPACE.sub("", name)).casefold()


def _phones(r: RowReading) -> tuple[PhoneText, ...]:
    phones: list[PhoneText] = []
    for field in ("phone", "phones"):
        for column, cell in r.cells(field):
            try:
                numbers = phone_texts(cell)
            except ValueError as exc:
                r.fail(field, str(exc))
                continue
            # Most phone columns imply nothing (手机), a landline one (座机) the kind.
            kind = column.meaning.implied("kind") if column.meaning.implies else None
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


def _birthday(r: RowReading, *, today: date) -> tuple[date | str | None, str | None]:
    """The birthday and its calendar: a 农历生日 column says lunar for every row of it."""
    found = r.first("birthday")
    stated = r.code("birthday_calendar", calendar_code, ("公历", "农历", "solar", "lunar"))
    if found is None:
        return None, None
    column, cell = found
    implied = column.meaning.implied("birthday_calendar") if column.meaning.implies else None
    if implied and stated and implied != stated:
        r.fail(
            "birthday_calendar",
            f"the column {column.header} holds {implied} birthdays but this row says {stated}",
        )
    leap = _LEAP_MONTH.fullmatch(cell) if isinstance(cell, str) and _may_be_leap(cell) else None
    if leap is not None:
        return _leap_month_birthday(r, leap, calendar=implied or stated)
    birthday = r.date_between("birthday", EARLIEST_BIRTHDAY, today)
    return birthday, (implied or stated or "solar") if birthday else None


def _may_be_leap(cell: str) -> bool:
    """Whether a cell may name a leap month (``_LEAP_MONTH`` needs its L or 闰): most birthdays
    are typed without, and need not be matched against the pattern."""
    return "L" in cell or "l" in cell or "闰" in cell


def _leap_month_birthday(
    r: RowReading, leap: re.Match[str], *, calendar: str | None
) -> tuple[str | None, str | None]:
    """A leap month's day: lunar whatever the row leaves unsaid; the date itself (its year in
    range, a 30th of a 29-day month, a leap month the year has not) is checked by the file's
    rules (calendars.check_birthday), as any lunar birthday is."""
    year, month, day = (int(part) for part in leap.groups())
    if calendar == "solar":
        r.fail("birthday", f"{leap.group(0).strip()}: only the lunar calendar has leap months")
        return None, None
    return f"{year:04d}-L{month:02d}-{day:02d}", "lunar"


def _notes(r: RowReading) -> str | None:
    # Notes are kept as typed (no NFKC): they are read by people, not matched.
    found = r.first("notes")
    return str(found[1]).strip() if found else None
