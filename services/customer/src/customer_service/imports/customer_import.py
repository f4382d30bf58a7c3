"""Customer rows written as customer files, a chunk at a time.

The rows come checked and sealed (customer_checks.py: each through what ``POST /customers``
applies, as its COPY tuple and its ``customer.registered`` outbox row). Here what they name is
looked up (referrers, rows imported before) and a chunk is written set-based (one COPY of the
files, their events staged as one batch row of the outbox) in one transaction with its progress.

A sheet imported again creates nothing: a row whose fingerprint this store imported before is
skipped, and a row whose phone already belongs to a file of the store is reported, not copied.
"""

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

from crm_libs import text_lists
from crm_libs.events.envelope import Topics
from crm_libs.events.outbox import stage_batch
from crm_libs.problems import InvalidField
from customer_service.customers.phones import looks_like_phone, normalise_phone, phone_lookup_hash
from customer_service.imports import copy_rows, fingerprint_trail_rows
from customer_service.imports.customer_checks import (
    COLUMNS,
    KIND,
    Checked,
    CheckedChunk,
    Sealed,
    StoreContext,
    sealed,
)
from customer_service.imports.file_phones import ACTIVE, SEQSCANS_OFF, TAKEN, files_with_phones
from customer_service.imports.jobs import Progress
from customer_service.imports.rows import RowError
from customer_service.ownership import rules as ownership_rules


@dataclass(slots=True)
class Prepared:
    """A chunk's rows checked, sealed and with their referrers: files to write, as (checked
    row, sealed with its referrer), and the errors of the others."""

    files: list[tuple[Checked, Sealed]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    skipped: int = 0


# --- looking up what rows name (async, one statement per chunk each) ---------------------------


async def imported_here(conn: Any, *, store_id: str) -> bool:
    """Whether the store imported customers before (then a job's rows imported already are
    found before checking, a sheet imported again is not checked again, and the job reads the
    store's fingerprints for each chunk)."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM import_fingerprint WHERE store_id = $1 AND kind = $2)",
            store_id,
            KIND,
        )
    )


# ``$4``: a job that keeps its own fingerprints in hand (``OwnKeys``). The store's index is then
# read only while another job of the store and kind runs, or has finished since this one began:
# the condition holds no column, so the plan tests it once, before the scan (a "One-Time
# Filter"), and a job importing into a store alone asks nothing of the index (a thousand probes
# a chunk, 5 % of an import).
_IMPORTED_BEFORE = f"""
    SELECT fingerprint FROM import_fingerprint
    WHERE store_id = $1 AND kind = $2 AND fingerprint = ANY({text_lists.split_sql("$3")})
      AND ($4::text IS NULL OR EXISTS (
          SELECT FROM import_job AS other
          WHERE other.store_id = $1 AND other.kind = $2 AND other.id <> $4
            AND (other.status = 'running'
                 OR other.finished_at >= (SELECT started_at FROM import_job WHERE id = $4))))
"""  # noqa: S608 - only the split's constant expression is interpolated


class OwnKeys:
    """The fingerprints a job's run has written, for a job that found none of its store's when
    it began: a row repeating one of an earlier chunk is found here, and the store's index is
    read only when another job of the store writes too (``_IMPORTED_BEFORE``).

    Kept as their hashes, in less than half the memory of their texts (a sheet may hold a
    million rows): a chunk with a key whose hash is here is looked up in the index, whole."""

    def __init__(self) -> None:
        self._hashes: set[int] = set()

    def add(self, keys: Iterable[str]) -> None:
        self._hashes.update(map(hash, keys))

    def may_hold_any(self, keys: Iterable[str]) -> bool:
        return not self._hashes.isdisjoint(map(hash, keys))


async def imported_before(
    conn: Any, *, store_id: str, kind: str, keys: list[str], alone_job: str | None = None
) -> set[str]:
    """The ``keys`` the store imported before. ``alone_job``: the job asking keeps its own
    fingerprints in hand, and only other jobs' are wanted (none while no other job of the
    store and kind has run since it began)."""
    rows = await conn.fetch(_IMPORTED_BEFORE, store_id, kind, text_lists.joined(keys), alone_job)
    return {r["fingerprint"] for r in rows}


async def referrers(
    conn: Any, *, context: StoreContext, texts: Collection[str]
) -> dict[str, str | RowError]:
    """Each referrer text of a chunk: the store's customer it names (by phone, else by name),
    or why none (a RowError whose row is filled in per row). Inside a chunk's transaction,
    begun by ``_CHUNK_START``."""
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
            conn,
            store_id=context.store_id,
            digests=list(by_hash),
            statuses=ACTIVE,
            seqscans_off=True,
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


# --- referrers among the checked rows ----------------------------------------------------------


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
    # The chunk's own files by name and phone, for a referrer among them: kept only for a
    # chunk that names any (most sheets name none, and a thousand rows' entries cost more
    # than the rest of this loop).
    named = any(row.referrer for row in checked)
    for row in checked:
        done = row.sealed
        if row.referrer:
            referrer = referrers.get(row.referrer)
            if referrer is None:
                referrer = _in_chunk(row.referrer, chunk_names, chunk_hashes, context)
            if isinstance(referrer, RowError):
                prepared.errors.append(RowError(row.row, referrer.field, referrer.message))
                # An owner naming nobody is the row's other error; the registration's checks
                # do not count on a row whose referrer names nobody.
                if row.owner_failed:
                    prepared.errors.extend(row.errors)
                continue
            if row.file is not None:
                # Sealed without the referrer: again with it.
                row.file.referrer_id = referrer
                done = sealed(row.file, timezone=context.timezone)
        if done is None or row.file_id is None:
            prepared.errors.extend(row.errors)
            continue
        prepared.files.append((row, done))
        if named:
            chunk_names.setdefault(row.name, []).append(row.file_id)
            for digest in row.phone_hashes:
                chunk_hashes.setdefault(digest, row.file_id)
    return prepared


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


# --- writing a chunk (one transaction) ---------------------------------------------------------

# A chunk's first statement, one round trip (on a busy machine each costs a chunk more than
# its statement): its commit asynchronous (write_chunk says why), sequential scans off for its
# look-ups (file_phones.py), and the store's import lock, for which other writers of the store's
# imports wait until the chunk commits (two imports of one sheet at once must not both find a
# phone free).
_CHUNK_START = (
    "SELECT set_config('synchronous_commit', 'off', true), "
    f"{SEQSCANS_OFF}, pg_advisory_xact_lock(hashtext('customer-import:' || $1))"
)
# Inserted entries wait in the GIN index's pending list, which every search reads whole (up
# to 4 MB of them): merged after each chunk, a chunk's search stays a thousand tree lookups.
CLEAN_PENDING = "SELECT gin_clean_pending_list('ix_customer_store_phone_hashes'::regclass)"


async def phones_taken(conn: Any, *, store_id: str, digests: list[str]) -> set[str]:
    """The phones (digests) of the store's active and archived files having any of
    ``digests`` (inside a chunk's transaction, begun by ``_CHUNK_START``)."""
    files = await files_with_phones(
        conn, store_id=store_id, digests=digests, statuses=TAKEN, seqscans_off=True
    )
    return {d for _, hashes in files for d in hashes}


# The chunk's fingerprints go in by COPY, not an insert that skips conflicts (a speculative
# insertion per row, twice the server's work). Nothing conflicts: the store's import lock is held
# from the look-up of the fingerprints imported before to the commit, and no other writer adds a
# customer fingerprint.
_TAKEN_PHONE = (
    "this phone already belongs to a customer file of the store: not imported again (update "
    "that file instead)"
)


async def write_chunk(
    conn: Any,
    *,
    chunk: CheckedChunk,
    context: StoreContext,
    job_id: str,
    by: str,
    own: OwnKeys | None = None,
) -> Progress:
    """A checked chunk written inside its transaction, once the chunks before are committed:
    under the store's import lock, the rows imported before are skipped (by this or another
    job), referrers are found (among those files too), and the rest written (``write``).
    ``own``: the job's own fingerprints, when it keeps them (``OwnKeys``; the chunk's are added).

    The transaction commits without waiting for the WAL's flush (a tenth of the import waited
    for each chunk's few megabytes to reach the disk). A crash may lose the last chunks written,
    with the progress the caller writes beside them: the job resumes before them and writes
    them again. Their events, one batch row, are sent only once durable (stage_batch)."""
    await conn.execute(_CHUNK_START, context.store_id)
    keys = [c.fingerprint for c in chunk.checked]
    alone = job_id if own is not None and not own.may_hold_any(keys) else None
    before = await imported_before(
        conn, store_id=context.store_id, kind=KIND, keys=keys, alone_job=alone
    )
    checked = [c for c in chunk.checked if c.fingerprint not in before]
    found = await referrers(
        conn, context=context, texts={c.referrer for c in checked if c.referrer}
    )
    prepared = resolve(checked, context=context, referrers=found)
    prepared.errors = [*chunk.errors, *prepared.errors]
    prepared.skipped = chunk.candidates - len(checked)
    progress, written = await write(conn, prepared=prepared, context=context, job_id=job_id, by=by)
    if own is not None:
        own.add(written)
    return replace(progress, rows=chunk.rows)


async def write(
    conn: Any, *, prepared: Prepared, context: StoreContext, job_id: str, by: str
) -> tuple[Progress, list[str]]:
    """Inside the chunk's transaction, the store's import lock held and the rows imported
    before left out (``write_chunk``): the files not duplicated, their events, their owners'
    first entries on the ownership trail (``by``: the account that imported the sheet) and
    fingerprints. Returns the chunk's outcome (its ``rows`` left for the caller) and the
    fingerprints written."""
    errors = list(prepared.errors)
    skipped = prepared.skipped
    keys_seen: set[str] = set()
    digests = [d for checked, _ in prepared.files for d in checked.phone_hashes]
    taken = await phones_taken(conn, store_id=context.store_id, digests=digests)
    keys: list[str] = []
    files: list[bytes] = []
    events: list[tuple[str, str, str]] = []
    fingerprints: list[bytes] = []
    owners: list[bytes] = []
    for checked, done in prepared.files:
        hashes, key = checked.phone_hashes, checked.fingerprint
        if any(d in taken for d in hashes):
            errors.append(RowError(checked.row, "phone", _TAKEN_PHONE))
            continue
        taken.update(hashes)
        if key in keys_seen:
            skipped += 1  # a repeated row of one chunk goes in once
            continue
        keys_seen.add(key)
        keys.append(key)
        files.append(done.row)
        events.append((done.event_id, cast("str", checked.file_id), done.envelope))
        fingerprints.append(checked.fingerprint_tail)
        if checked.trail_tail is not None:
            owners.append(checked.trail_tail)
    if files:
        await _copy(conn, "customer", COLUMNS, copy_rows.copy_data(files))
        await _copy(
            conn,
            "import_fingerprint",
            fingerprint_trail_rows.FINGERPRINT_COLUMNS,
            fingerprint_trail_rows.fingerprint_data(
                fingerprints, store_id=context.store_id, kind=KIND, job_id=job_id
            ),
        )
        await stage_batch(conn, topic=Topics.CUSTOMERS, events=events)
        if owners:
            # A file the sheet gives an owner starts its ownership trail as a registration's
            # does (ownership/history.py's ``record``: ``registered``, from nobody, no change
            # of hands).
            data = fingerprint_trail_rows.trail_data(
                owners,
                store_id=context.store_id,
                kind=ownership_rules.REGISTERED,
                reason=f"the file's first owner, named by spreadsheet import {job_id}",
                by=by,
                change_of_hands=False,
            )
            await _copy(conn, "ownership_change", fingerprint_trail_rows.TRAIL_COLUMNS, data)
        await conn.execute(CLEAN_PENDING)
    errors.sort(key=lambda e: e.row)
    progress = Progress(rows=0, created=len(files), skipped=skipped, errors=errors)
    return progress, keys


async def _copy(conn: Any, table: str, columns: Sequence[str], data: bytes) -> None:
    await conn.copy_to_table(table, source=copy_rows.once(data), columns=columns, format="binary")
