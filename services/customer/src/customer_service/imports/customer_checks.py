"""A customers sheet's rows checked and sealed as the files a registration would open: pure work,
run in the import's row-check processes (imports/row_checks.py) or, for a short sheet, a thread.

Each row goes through what ``POST /customers`` applies: the write schema (``CustomerCreate``,
every field checked and unknown ones impossible: customer_registration.py) and the profile's
rules for phones, birthdays, anniversaries and name keys (customers/profile.py,
customers/pinyin.py); the sealed phones and ID number are what a registration stores. A file
comes out as its COPY tuple and its ``customer.registered`` outbox row, so that writing a chunk
(customer_import.py) only sends them.

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
from customer_service.imports import fingerprint_trail_rows
from customer_service.imports.customer_registration import registration, sheet_field
from customer_service.imports.customer_rows import CustomerCandidate, read_customer_row
from customer_service.imports.customer_sealing import COLUMNS as COLUMNS
from customer_service.imports.customer_sealing import NewFile, Sealed, sealed
from customer_service.imports.customer_sealing import record_of as record_of
from customer_service.imports.headers import Columns
from customer_service.imports.row_ids import RowIds
from customer_service.imports.rows import RowError
from customer_service.imports.sheets import Cell, SheetRow

if TYPE_CHECKING:
    from customer_service.customers.schemas import PhoneIn

KIND = "customers"


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
    # The file's own fields of its fingerprint row and of its first ownership entry, if the
    # sheet names its owner (fingerprint_trail_rows.py).
    fingerprint_tail: bytes = b""
    trail_tail: bytes | None = None

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
                fingerprint_tail=fingerprint_trail_rows.fingerprint_tail(key, result.id),
                trail_tail=(
                    fingerprint_trail_rows.trail_tail(result.id, owner_id)
                    if owner_id is not None
                    else None
                ),
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
    customer_in = registration(candidate, owner_staff_id, referrer_id)
    if isinstance(customer_in, list):
        return customer_in
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
        return [RowError(candidate.row, sheet_field(e["field"]), e["message"]) for e in errors]
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
