"""A customers sheet's rows checked and sealed as the files a registration would open: pure work,
run in the import's row-check processes (imports/row_checks.py) or, for a short sheet, a thread.

Each row goes through what ``POST /customers`` applies: the write schema (``CustomerCreate``,
every field checked and unknown ones impossible) and the profile's rules for phones, birthdays,
anniversaries and name keys (customers/profile.py, customers/pinyin.py); the sealed phones and
ID number are what a registration stores. A file comes out as its COPY record and its
``customer.registered`` outbox row, so that writing a chunk (customer_import.py) only sends them.

What crosses between processes is kept to tuples and lists (pickled in C): the sheet's rows in,
each row's outcome out, and the whole file only for a row naming a referrer (it is sealed again
once the referrer is found). The file's record and event are customer_sealing.py's (the write
path takes them, and ``COLUMNS``, from here too).
"""

import functools
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from crm_libs.field_crypto import FieldCipher, Nonces
from crm_libs.problems import InvalidField, ProblemError
from customer_service.customers import pinyin, profile
from customer_service.customers.calendars import BIRTHDAY_CALENDARS
from customer_service.customers.emails import check_email
from customer_service.customers.id_numbers import check_id_number
from customer_service.customers.phones import PHONE_KINDS
from customer_service.imports.codes import GENDERS, SOURCE_CHANNELS
from customer_service.imports.customer_rows import CustomerCandidate, read_customer_row
from customer_service.imports.customer_sealing import COLUMNS as COLUMNS
from customer_service.imports.customer_sealing import NewFile, Sealed, sealed
from customer_service.imports.customer_sealing import record_of as record_of
from customer_service.imports.headers import Columns
from customer_service.imports.row_ids import RowIds
from customer_service.imports.rows import RowError
from customer_service.imports.sheets import Cell, SheetRow

# The write schema (pydantic's models) only for a row the plain reading does not take: a
# check process reads most sheets without loading pydantic (a third of its start).
if TYPE_CHECKING:
    from customer_service.customers.schemas import CustomerCreate, PhoneIn

KIND = "customers"
IMPORT_CHANNEL = "import"


@dataclass(frozen=True, slots=True)
class StoreContext:
    """What checking a store's rows needs, sent to the row-check processes with each chunk: the
    keys rather than a cipher (each process builds its own once)."""

    store_id: str
    timezone: str
    field_keys: tuple[str, ...]
    phone_hash_key: str
    # Active staff by name (服务代表 columns name people, not ids), and their ids.
    staff_by_name: Mapping[str, tuple[str, ...]]
    staff_ids: frozenset[str]

    @property
    def cipher(self) -> FieldCipher:
        return _cipher(self.field_keys)


@functools.cache
def _cipher(keys: tuple[str, ...]) -> FieldCipher:
    return FieldCipher(list(keys))


class Checked(NamedTuple):
    """A row through the registration's checks, its referrer not yet resolved: the file it
    would open (sealed), or its errors (an owner that names nobody stops the checks, as on the
    API). ``file`` is kept only for a row naming a referrer, to be sealed again with it."""

    row: int
    fingerprint: str
    referrer: str | None
    errors: list[RowError]
    owner_failed: bool = False
    file_id: str | None = None
    name: str = ""
    phone_hashes: list[str] = []
    sealed: Sealed | None = None
    file: NewFile | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        # Unpickled as the tuple it is, in C (customer_sealing.Sealed says why).
        return tuple.__new__, (Checked, tuple(self))


class CheckedChunk(NamedTuple):
    """A chunk of sheet rows read and checked: rows read, the errors of rows that could not be
    read, how many were read as candidates, and the candidates not imported before, checked."""

    rows: int
    errors: list[RowError]
    candidates: int
    checked: list[Checked]


# A sheet row as it travels to a row-check process: (number, cells).
RawRow = tuple[int, Sequence[Cell]]


def raw_rows(rows: Iterable[SheetRow], count: int) -> list[RawRow]:
    """The next ``count`` rows of a sheet, as they travel."""
    return [(row.number, row.cells) for row in itertools.islice(rows, count)]


def fingerprints_of(raw: Sequence[RawRow], *, columns: Columns, today: date) -> list[str]:
    """The fingerprints of the rows that read as candidates (to ask which were imported)."""
    candidates = (read_customer_row(SheetRow(n, c), columns, today=today) for n, c in raw)
    return [c.fingerprint for c in candidates if isinstance(c, CustomerCandidate)]


def check_rows(
    raw: Sequence[RawRow],
    *,
    columns: Columns,
    today: date,
    context: StoreContext,
    imported: frozenset[str] = frozenset(),
) -> CheckedChunk:
    """A chunk's rows read and checked, but for those whose fingerprint is in ``imported``."""
    errors: list[RowError] = []
    candidates: list[CustomerCandidate] = []
    for number, cells in raw:
        result = read_customer_row(SheetRow(number, cells), columns, today=today)
        if isinstance(result, list):
            errors.extend(result)
        else:
            candidates.append(result)
    fresh = [c for c in candidates if c.fingerprint not in imported]
    return CheckedChunk(len(raw), errors, len(candidates), check(fresh, context=context))


def check(candidates: Sequence[CustomerCandidate], *, context: StoreContext) -> list[Checked]:
    """Each candidate's file or errors, without its referrer (which may name a file the
    previous chunk is still writing: it is resolved once that chunk is committed)."""
    checked = []
    # The chunk's random draws, read together (a system call each, dearer than their use).
    ids, nonces = RowIds(len(candidates)), Nonces(len(candidates))
    for candidate in candidates:
        row, key, referrer = candidate.row, candidate.fingerprint, candidate.referrer
        errors: list[RowError] = []
        owner_id = _owner(candidate, context, errors)
        if errors:
            checked.append(Checked(row, key, referrer, errors, owner_failed=True))
            continue
        result = customer_of(
            candidate,
            context=context,
            owner_staff_id=owner_id,
            referrer_id=None,
            ids=ids,
            nonces=nonces,
        )
        if isinstance(result, list):
            checked.append(Checked(row, key, referrer, result))
            continue
        checked.append(
            Checked(
                row,
                key,
                referrer,
                [],
                file_id=result.id,
                name=result.name,
                phone_hashes=result.phone_hashes,
                sealed=sealed(result, timezone=context.timezone, ids=ids),
                file=result if referrer else None,
            )
        )
    return checked


def _owner(
    candidate: CustomerCandidate, context: StoreContext, errors: list[RowError]
) -> str | None:
    """The serving staff member a row names (by name, or by id), else none: an imported file
    waits for a manager to name its owner."""
    if not candidate.owner:
        return None
    if candidate.owner in context.staff_ids:
        return candidate.owner
    ids = context.staff_by_name.get(candidate.owner, ())
    if len(ids) == 1:
        return ids[0]
    message = (
        f"{len(ids)} active staff members are named {candidate.owner}: give the staff id"
        if ids
        else f"no active staff member of the store is named {candidate.owner}"
    )
    errors.append(RowError(candidate.row, "owner", message))
    return None


def customer_of(
    candidate: CustomerCandidate,
    *,
    context: StoreContext,
    owner_staff_id: str | None,
    referrer_id: str | None,
    ids: RowIds | None = None,
    nonces: Nonces | None = None,
) -> NewFile | list[RowError]:
    """The file ``POST /customers`` would open for this row, or the row's errors (each field the
    registration would name); its id and its fields' nonces from a chunk's ``ids`` and
    ``nonces``, else drawn now."""
    customer_in = plain_registration(candidate, owner_staff_id, referrer_id)
    if customer_in is None:
        from pydantic import ValidationError

        from customer_service.customers.schemas import CustomerCreate

        try:
            model = CustomerCreate.model_validate(_body(candidate, owner_staff_id, referrer_id))
        except ValidationError as exc:
            return [
                RowError(candidate.row, _sheet_field(".".join(str(p) for p in e["loc"])), e["msg"])
                for e in exc.errors()
            ]
        customer_in = registration_of(model)
    # Each rule's invalid fields collected, with plain try blocks (four context managers a row
    # cost more than the rules they guarded). A phone list answers with one problem naming
    # each invalid number when there are several: a row's errors too, not the import's end.
    errors: list[dict[str, str]] = []
    name = customer_in.name.strip()
    phones: list[dict[str, Any]] = []
    birthday: date | None = None
    anniversary: date | None = None
    calendar = customer_in.birthday_calendar or "solar"
    if not name:
        errors.append({"field": "name", "message": "may not be blank"})
    if customer_in.phones:
        try:
            phones = profile.parse_phones(
                cast("list[PhoneIn]", customer_in.phones), None, current=[]
            )
        except ProblemError as exc:
            if not exc.errors:
                raise
            errors.extend(exc.errors)
    try:
        birthday = profile.solar_birthday(customer_in.birthday, calendar, timezone=context.timezone)
    except InvalidField as exc:
        errors.extend(exc.errors or [])
    try:
        anniversary = profile.check_anniversary(
            customer_in.wedding_anniversary, birthday=birthday, timezone=context.timezone
        )
    except InvalidField as exc:
        errors.extend(exc.errors or [])
    if errors:
        return [RowError(candidate.row, _sheet_field(e["field"]), e["message"]) for e in errors]
    cipher = context.cipher
    encrypted, hashes, tails = profile.sealed_phones(
        phones, cipher=cipher, hash_key=context.phone_hash_key, nonces=nonces
    )
    return NewFile(
        id=(ids or RowIds(1)).file_id(),
        store_id=context.store_id,
        name=name,
        name_keys=pinyin.name_keys_text(name),
        gender=customer_in.gender,
        ethnicity=customer_in.ethnicity,
        approximate_age=customer_in.approximate_age,
        birthday=birthday,
        birthday_calendar=calendar,
        wedding_anniversary=anniversary,
        email=customer_in.email,
        address=customer_in.address,
        source=customer_in.source,
        referrer_id=referrer_id,
        owner_staff_id=owner_staff_id,
        phones_encrypted=encrypted,
        phone_hashes=hashes,
        phone_tails=tails,
        id_number_encrypted=(
            cipher.encrypt(customer_in.id_number, nonces=nonces) if customer_in.id_number else None
        ),
    )


class PhoneEntry(NamedTuple):
    """A phone of a registration as ``profile.parse_phones`` reads a ``PhoneIn``."""

    number: str
    kind: str | None
    primary: bool


class Registration(NamedTuple):
    """What a file is made of once the write schema accepted the row (``CustomerCreate``'s
    fields as the file stores them: the gender's value, not the enum, as the file travels
    pickled; the address and the source as their stored JSON objects)."""

    name: str
    phones: list[PhoneEntry] | None
    gender: str | None
    ethnicity: str | None
    approximate_age: int | None
    birthday: str | None
    birthday_calendar: str | None
    wedding_anniversary: date | None
    email: str | None
    address: dict[str, Any] | None
    source: dict[str, Any] | None
    id_number: str | None


def registration_of(customer_in: "CustomerCreate") -> Registration:
    """The fields of a registration the write schema read."""
    source = customer_in.source
    return Registration(
        name=customer_in.name,
        phones=(
            [PhoneEntry(p.number, p.kind, p.primary) for p in customer_in.phones]
            if customer_in.phones is not None
            else None
        ),
        gender=customer_in.gender.value if customer_in.gender else None,
        ethnicity=customer_in.ethnicity,
        approximate_age=customer_in.approximate_age,
        birthday=customer_in.birthday,
        birthday_calendar=customer_in.birthday_calendar,
        wedding_anniversary=customer_in.wedding_anniversary,
        email=customer_in.email,
        address=customer_in.address.model_dump(exclude_none=True) if customer_in.address else None,
        source=(
            {**source.model_dump(exclude_none=True), "cost": f"{source.cost:.2f}"}
            if source
            else None
        ),
        id_number=customer_in.id_number,
    )


# The schema's genders (its Gender, which test_customer_checks.py compares).
_GENDERS = frozenset(GENDERS)
_CALENDARS = frozenset(BIRTHDAY_CALENDARS)
_PHONE_KINDS = frozenset(PHONE_KINDS)
_CHANNELS = frozenset(SOURCE_CHANNELS)


def _text_within(value: str | None, longest: int) -> bool:
    return value is None or 0 < len(value) <= longest


def plain_registration(
    c: CustomerCandidate, owner_staff_id: str | None, referrer_id: str | None
) -> Registration | None:
    """``registration_of`` the write schema's reading of the row's registration (``_body``),
    without building the schema's models (a fifth of a row's checks): for a row whose every
    field the schema would take as it is, else None (the schema then reads the row, and names
    what it refuses). The schema's limits are repeated here; test_customer_checks.py proves
    both readings equal, and this one None wherever the schema refuses a field."""
    name = c.name
    if not (
        0 < len(name) <= 100
        and (c.gender is None or c.gender in _GENDERS)
        and _text_within(c.ethnicity, 200)
        and (c.approximate_age is None or 0 <= c.approximate_age <= 130)
        and (c.birthday_calendar is None or c.birthday_calendar in _CALENDARS)
        and (c.wedding_anniversary is None or type(c.wedding_anniversary) is date)
        and _text_within(owner_staff_id, 64)
        and _text_within(referrer_id, 64)
        and _text_within(c.source_method, 200)
        and (c.source_channel is None or c.source_channel in _CHANNELS)
        and len(c.phones) <= 10
    ):
        return None
    birthday = None
    if type(c.birthday) is date:
        birthday = c.birthday.isoformat()
    elif type(c.birthday) is str and len(c.birthday) <= 16:
        birthday = c.birthday  # a lunar leap month's day (1944-L04-04), checked as any birthday
    elif c.birthday is not None:
        return None
    phones: list[PhoneEntry] | None = None
    if c.phones:
        phones = []
        for p in c.phones:
            if not 0 < len(p.number) <= 32 or (p.kind is not None and p.kind not in _PHONE_KINDS):
                return None
            phones.append(PhoneEntry(p.number, p.kind, not phones))
    email = c.email
    if email is not None:
        if len(email) > 254:
            return None
        try:
            email = check_email(email)
        except ValueError:
            return None
    id_number = c.id_number
    if id_number is not None:
        if len(id_number) > 18:
            return None
        try:
            id_number = check_id_number(id_number)
        except ValueError:
            return None
    address = None
    street = c.street or c.address
    if c.province or c.city or c.district or street:
        if not (
            _text_within(c.province, 200)
            and _text_within(c.city, 200)
            and _text_within(c.district, 200)
            and _text_within(street, 1000)
        ):
            return None
        parts = {"province": c.province, "city": c.city, "district": c.district, "street": street}
        address = {k: v for k, v in parts.items() if v}
    source: dict[str, Any] = {"channel": c.source_channel or IMPORT_CHANNEL}
    if c.source_method:
        source["method"] = c.source_method
    source["cost"] = "0.00"
    return Registration(
        name=name,
        phones=phones,
        gender=c.gender,
        ethnicity=c.ethnicity,
        approximate_age=c.approximate_age,
        birthday=birthday,
        birthday_calendar=c.birthday_calendar,
        wedding_anniversary=c.wedding_anniversary,
        email=email,
        address=address,
        source=source,
        id_number=id_number,
    )


def _body(
    c: CustomerCandidate, owner_staff_id: str | None, referrer_id: str | None
) -> dict[str, Any]:
    """The registration a row stands for, in API.md's field names."""
    body: dict[str, Any] = {"store_id": "import", "name": c.name}
    optional = {
        "gender": c.gender,
        "ethnicity": c.ethnicity,
        "approximate_age": c.approximate_age,
        "birthday": (c.birthday if isinstance(c.birthday, str) else c.birthday.isoformat())
        if c.birthday
        else None,
        "birthday_calendar": c.birthday_calendar,
        "wedding_anniversary": c.wedding_anniversary,
        "email": c.email,
        "id_number": c.id_number,
        "owner_staff_id": owner_staff_id,
        "referrer_id": referrer_id,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    if c.phones:
        body["phones"] = [
            {"number": p.number, **({"kind": p.kind} if p.kind else {})} for p in c.phones
        ]
        body["phones"][0]["primary"] = True
    address = {
        "province": c.province,
        "city": c.city,
        "district": c.district,
        # An address in one cell is kept whole as the street line, to be split by staff later.
        "street": c.street or c.address,
    }
    if any(address.values()):
        body["address"] = {k: v for k, v in address.items() if v}
    body["source"] = {
        "channel": c.source_channel or IMPORT_CHANNEL,
        **({"method": c.source_method} if c.source_method else {}),
    }
    return body


# API field → the sheet field its column was read into, where they differ.
_SHEET_FIELDS = {"phones": "phone", "address.street": "address"}


def _sheet_field(api_field: str) -> str:
    head = api_field.split(".")[0]
    if head == "phones":
        return "phone"
    return _SHEET_FIELDS.get(api_field, api_field)
