"""Customer rows written as customer files, a chunk at a time.

Each row goes through what ``POST /customers`` applies: the write schema (``CustomerCreate``,
every field checked and unknown ones impossible) and the profile's rules for phones, birthdays,
anniversaries and name keys (customers/profile.py, customers/pinyin.py); the sealed phones and
ID number are what a registration stores. A chunk is written set-based (one COPY of the files,
one COPY of their ``customer.registered`` outbox rows) in one transaction with its progress.

A sheet imported again creates nothing: a row whose fingerprint this store imported before is
skipped, and a row whose phone already belongs to a file of the store is reported, not copied.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, cast

import orjson
from pydantic import ValidationError

from crm_libs.events.envelope import EventEnvelope, Topics
from crm_libs.field_crypto import FieldCipher
from crm_libs.ids import new_id
from crm_libs.problems import InvalidField
from customer_service.customers import events, pinyin, profile
from customer_service.customers.models import Customer
from customer_service.customers.phones import looks_like_phone, normalise_phone, phone_lookup_hash
from customer_service.customers.schemas import CustomerCreate
from customer_service.imports.customer_rows import CustomerCandidate
from customer_service.imports.file_phones import ACTIVE, TAKEN, files_with_phones
from customer_service.imports.jobs import Progress
from customer_service.imports.rows import RowError

KIND = "customers"
IMPORT_CHANNEL = "import"
# The columns a file is written with (what a registration fills; the rest keep their defaults).
COLUMNS = (
    "id",
    "store_id",
    "name",
    "name_keys",
    "gender",
    "ethnicity",
    "approximate_age",
    "birthday",
    "birthday_calendar",
    "wedding_anniversary",
    "email",
    "address",
    "source",
    "referrer_id",
    "owner_staff_id",
    "prospect_stage",
    "phones_encrypted",
    "phone_hashes",
    "phone_tails",
    "id_number_encrypted",
    "status",
    "version",
)
_JSON_COLUMNS = frozenset({"address", "source"})


@dataclass(slots=True)
class NewFile:
    """A file to write, under the model's column names (``Customer``'s): not an ORM object, whose
    construction costs more than all the row's checks together."""

    store_id: str
    name: str
    name_keys: str
    gender: str | None
    ethnicity: str | None
    approximate_age: int | None
    birthday: date | None
    birthday_calendar: str
    wedding_anniversary: date | None
    email: str | None
    address: dict[str, Any] | None
    source: dict[str, Any] | None
    referrer_id: str | None
    owner_staff_id: str | None
    phones_encrypted: str | None
    phone_hashes: list[str]
    phone_tails: list[str]
    id_number_encrypted: str | None
    id: str = field(default_factory=new_id)
    prospect_stage: str = "collected"
    status: str = "active"
    version: int = 1
    consents: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class StoreContext:
    store_id: str
    timezone: str
    cipher: FieldCipher
    phone_hash_key: str
    # Active staff by name (服务代表 columns name people, not ids), and their ids.
    staff_by_name: Mapping[str, tuple[str, ...]]
    staff_ids: frozenset[str]


@dataclass(frozen=True, slots=True)
class Sealed:
    """A file as its COPY record and its ``customer.registered`` outbox row, built with the
    checks (off the event loop) rather than inside the chunk's transaction."""

    record: tuple[Any, ...]
    event_id: str
    envelope: str


def sealed(file: NewFile, *, timezone: str) -> Sealed:
    event = _registered(file, timezone=timezone)
    return Sealed(record_of(file), str(event.event_id), event.to_bytes().decode())


@dataclass(slots=True)
class Prepared:
    """A chunk's rows checked and sealed: files to write (with their rows and fingerprints), and
    the errors of the others."""

    files: list[tuple[CustomerCandidate, NewFile, Sealed]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    skipped: int = 0


# --- looking up what rows name (async, one statement per chunk each) ---------------------------


async def imported_before(conn: Any, *, store_id: str, kind: str, keys: list[str]) -> set[str]:
    rows = await conn.fetch(
        "SELECT fingerprint FROM import_fingerprint "
        "WHERE store_id = $1 AND kind = $2 AND fingerprint = ANY($3::text[])",
        store_id,
        kind,
        keys,
    )
    return {r["fingerprint"] for r in rows}


async def referrers(
    conn: Any, *, context: StoreContext, candidates: Sequence[CustomerCandidate]
) -> dict[str, str | RowError]:
    """Each referrer text of the chunk: the store's customer it names (by phone, else by name),
    or why none (a RowError whose row is filled in per row)."""
    texts = {c.referrer for c in candidates if c.referrer}
    found: dict[str, str | RowError] = {}
    by_hash: dict[str, str] = {}
    names: list[str] = []
    for text in texts:
        if looks_like_phone(text):
            try:
                e164 = normalise_phone(text, field="referrer")
            except InvalidField:
                found[text] = RowError(0, "referrer", f"{text} is not a valid phone number")
                continue
            by_hash[phone_lookup_hash(e164, key=context.phone_hash_key)] = text
        else:
            names.append(text)
    if by_hash:
        files = await files_with_phones(
            conn, store_id=context.store_id, digests=list(by_hash), statuses=ACTIVE
        )
        for file_id, hashes in files:
            for digest in hashes:
                if digest in by_hash:
                    found.setdefault(by_hash[digest], file_id)
    if names:
        rows = await conn.fetch(
            "SELECT name, array_agg(id) AS ids FROM customer WHERE store_id = $1 "
            "AND status = 'active' AND name = ANY($2::text[]) GROUP BY name",
            context.store_id,
            names,
        )
        for row in rows:
            ids = row["ids"]
            found[row["name"]] = (
                ids[0]
                if len(ids) == 1
                else RowError(
                    0,
                    "referrer",
                    f"{len(ids)} customers of the store are named {row['name']}: give the "
                    "referrer's phone instead",
                )
            )
    return found


# --- checking and sealing a row (pure: run off the event loop) ---------------------------------


@dataclass(slots=True)
class Checked:
    """A row through the registration's checks, its referrer not yet resolved: the file it
    would open, or its errors (an owner that names nobody stops the checks, as on the API)."""

    candidate: CustomerCandidate
    file: NewFile | None
    errors: list[RowError]
    owner_failed: bool = False
    sealed: Sealed | None = None


def check(candidates: Sequence[CustomerCandidate], *, context: StoreContext) -> list[Checked]:
    """Each candidate's file or errors, without its referrer (which may name a file the
    previous chunk is still writing: ``resolve`` fills it in once that chunk is committed)."""
    checked = []
    for candidate in candidates:
        errors: list[RowError] = []
        owner_id = _owner(candidate, context, errors)
        if errors:
            checked.append(Checked(candidate, None, errors, owner_failed=True))
            continue
        result = customer_of(candidate, context=context, owner_staff_id=owner_id, referrer_id=None)
        if isinstance(result, list):
            checked.append(Checked(candidate, None, result))
        else:
            checked.append(
                Checked(candidate, result, [], sealed=sealed(result, timezone=context.timezone))
            )
    return checked


def resolve(
    checked: Sequence[Checked], *, context: StoreContext, referrers: Mapping[str, str | RowError]
) -> Prepared:
    """The checked rows with their referrers: a row whose referrer names nobody reports that
    (before any other error of the row) and opens no file.

    A referrer named by an earlier row of the same chunk is found among the chunk's own files.
    """
    prepared = Prepared()
    chunk_names: dict[str, list[str]] = {}
    chunk_hashes: dict[str, str] = {}
    for row in checked:
        candidate, file = row.candidate, row.file
        if candidate.referrer:
            referrer = referrers.get(candidate.referrer)
            if referrer is None:
                referrer = _in_chunk(candidate.referrer, chunk_names, chunk_hashes, context)
            if isinstance(referrer, RowError):
                prepared.errors.append(RowError(candidate.row, referrer.field, referrer.message))
                # An owner naming nobody is the row's other error; the registration's checks
                # do not count on a row whose referrer names nobody.
                if row.owner_failed:
                    prepared.errors.extend(row.errors)
                continue
            if file is not None:
                file.referrer_id = referrer
        if file is None or row.sealed is None:
            prepared.errors.extend(row.errors)
            continue
        # The record and event were sealed without the referrer: again with it.
        done = sealed(file, timezone=context.timezone) if file.referrer_id else row.sealed
        prepared.files.append((candidate, file, done))
        chunk_names.setdefault(file.name, []).append(file.id)
        for digest in file.phone_hashes:
            chunk_hashes.setdefault(digest, file.id)
    return prepared


def prepare(
    candidates: Sequence[CustomerCandidate],
    *,
    context: StoreContext,
    referrers: Mapping[str, str | RowError],
) -> Prepared:
    """Each candidate as the file a registration would store, or its row's errors."""
    return resolve(check(candidates, context=context), context=context, referrers=referrers)


def _in_chunk(
    text: str, names: Mapping[str, list[str]], hashes: Mapping[str, str], context: StoreContext
) -> str | RowError:
    if looks_like_phone(text):
        try:
            digest = phone_lookup_hash(normalise_phone(text), key=context.phone_hash_key)
        except InvalidField:
            digest = ""
        if digest in hashes:
            return hashes[digest]
    elif len(names.get(text, ())) == 1:
        return names[text][0]
    return RowError(0, "referrer", f"no customer of the store has the phone or name {text}")


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
) -> NewFile | list[RowError]:
    """The file ``POST /customers`` would open for this row, or the row's errors (each field the
    registration would name)."""
    try:
        customer_in = CustomerCreate.model_validate(_body(candidate, owner_staff_id, referrer_id))
    except ValidationError as exc:
        return [
            RowError(candidate.row, _sheet_field(".".join(str(p) for p in e["loc"])), e["msg"])
            for e in exc.errors()
        ]
    checks = profile.FieldErrors()
    name = customer_in.name.strip()
    phones: list[dict[str, Any]] = []
    birthday: date | None = None
    anniversary: date | None = None
    calendar = customer_in.birthday_calendar or "solar"
    with checks.checking():
        if not name:
            raise InvalidField("name", "may not be blank")
    if customer_in.phones:
        with checks.checking():
            phones = profile.parse_phones(customer_in.phones, None, current=[])
    with checks.checking():
        birthday = profile.solar_birthday(customer_in.birthday, calendar, timezone=context.timezone)
    with checks.checking():
        anniversary = profile.check_anniversary(
            customer_in.wedding_anniversary, birthday=birthday, timezone=context.timezone
        )
    if checks.errors:
        return [
            RowError(candidate.row, _sheet_field(e["field"]), e["message"]) for e in checks.errors
        ]
    encrypted, hashes, tails = profile.sealed_phones(
        phones, cipher=context.cipher, hash_key=context.phone_hash_key
    )
    source = customer_in.source
    return NewFile(
        store_id=context.store_id,
        name=name,
        name_keys=pinyin.name_search_keys(name).text,
        gender=customer_in.gender,
        ethnicity=customer_in.ethnicity,
        approximate_age=customer_in.approximate_age,
        birthday=birthday,
        birthday_calendar=calendar,
        wedding_anniversary=anniversary,
        email=customer_in.email,
        address=customer_in.address.model_dump(exclude_none=True) if customer_in.address else None,
        source=(
            {**source.model_dump(exclude_none=True), "cost": f"{source.cost:.2f}"}
            if source
            else None
        ),
        referrer_id=referrer_id,
        owner_staff_id=owner_staff_id,
        phones_encrypted=encrypted,
        phone_hashes=hashes,
        phone_tails=tails,
        id_number_encrypted=(
            context.cipher.encrypt(customer_in.id_number) if customer_in.id_number else None
        ),
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
        "birthday": c.birthday.isoformat() if c.birthday else None,
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


# --- writing a chunk (one transaction) ---------------------------------------------------------

# Other writers of the store's imports wait for this chunk: two imports of one sheet at once
# must not both find a phone free.
_STORE_LOCK = "SELECT pg_advisory_xact_lock(hashtext('customer-import:' || $1))"
# Inserted entries wait in the GIN index's pending list, which every search reads whole (up
# to 4 MB of them): merged after each chunk, a chunk's search stays a thousand tree lookups.
CLEAN_PENDING = "SELECT gin_clean_pending_list('ix_customer_store_phone_hashes'::regclass)"


async def phones_taken(conn: Any, *, store_id: str, digests: list[str]) -> set[str]:
    """The phones (digests) of the store's active and archived files having any of
    ``digests``."""
    files = await files_with_phones(conn, store_id=store_id, digests=digests, statuses=TAKEN)
    return {d for _, hashes in files for d in hashes}


_CLAIM_FINGERPRINTS = """
    INSERT INTO import_fingerprint (store_id, kind, fingerprint, job_id, record_id)
    SELECT $1, $2, f, $3, r FROM unnest($4::text[], $5::text[]) AS t(f, r)
    ON CONFLICT DO NOTHING
    RETURNING fingerprint
"""
# COPY fires the outbox's statement trigger as an INSERT does (the relay is woken once).
_OUTBOX_COLUMNS = ("event_id", "topic", "key", "envelope")


async def write(
    conn: Any, *, prepared: Prepared, context: StoreContext, job_id: str
) -> tuple[list[NewFile], Progress]:
    """Inside the chunk's transaction: the files not duplicated, their events and fingerprints.
    Returns the files written and the chunk's outcome (its ``rows`` left for the caller)."""
    await conn.execute(_STORE_LOCK, context.store_id)
    errors = list(prepared.errors)
    skipped = prepared.skipped
    digests = [d for _, c, _ in prepared.files for d in c.phone_hashes]
    taken = await phones_taken(conn, store_id=context.store_id, digests=digests)
    fresh: list[tuple[CustomerCandidate, NewFile, Sealed]] = []
    for candidate, customer, rows in prepared.files:
        if any(d in taken for d in customer.phone_hashes):
            errors.append(
                RowError(
                    candidate.row,
                    "phone",
                    "this phone already belongs to a customer file of the store: not imported "
                    "again (update that file instead)",
                )
            )
            continue
        taken.update(customer.phone_hashes)
        fresh.append((candidate, customer, rows))
    claimed: set[str] = set()
    if fresh:
        claimed = {
            r["fingerprint"]
            for r in await conn.fetch(
                _CLAIM_FINGERPRINTS,
                context.store_id,
                KIND,
                job_id,
                [c.fingerprint for c, _, _ in fresh],
                [f.id for _, f, _ in fresh],
            )
        }
    written = []
    rows_written = []
    for candidate, customer, rows in fresh:
        if candidate.fingerprint in claimed:
            claimed.discard(candidate.fingerprint)  # a repeated row of one chunk goes in once
            written.append(customer)
            rows_written.append(rows)
        else:
            skipped += 1
    if written:
        await conn.copy_records_to_table(
            "customer", records=[r.record for r in rows_written], columns=COLUMNS
        )
        await conn.copy_records_to_table(
            "outbox_event",
            records=[
                (r.event_id, Topics.CUSTOMERS, c.id, r.envelope)
                for c, r in zip(written, rows_written, strict=True)
            ],
            columns=_OUTBOX_COLUMNS,
        )
        await conn.execute(CLEAN_PENDING)
    errors.sort(key=lambda e: e.row)
    return written, Progress(rows=0, created=len(written), skipped=skipped, errors=errors)


def record_of(customer: NewFile) -> tuple[Any, ...]:
    return tuple(
        _json_text(getattr(customer, name)) if name in _JSON_COLUMNS else getattr(customer, name)
        for name in COLUMNS
    )


def _json_text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _registered(customer: NewFile, *, timezone: str) -> EventEnvelope:
    """``customer.registered`` as a registration stages it (customers/events.py's payload)."""
    # The payload reads the file's attributes by the model's names, which NewFile shares.
    file = events.file_payload(cast(Customer, customer), timezone=timezone, relations=[])
    return EventEnvelope(
        type=events.CUSTOMER_REGISTERED,
        store_id=customer.store_id,
        customer_id=customer.id,
        payload={"timezone": timezone, "file": file},
    )
