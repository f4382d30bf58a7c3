"""A chunk's fingerprints and its files' first ownership entries as binary COPY data.

Each imported file is written with its row's fingerprint (``import_fingerprint``) and, when the
sheet names its owner, the first entry of its ownership trail (``ownership_change``). Sent with
asyncpg's ``copy_records_to_table``, those rows were tuples built on the event loop that writes
the chunks, then encoded value by value there, between the chunk's statements: work on the one
path every chunk waits for. Here the part of each row that is the file's own (its fingerprint and
id; its id and owner) is encoded where the row is checked, as a *tail*; the columns every row of
a chunk shares (store, kind, job, reason, account) lead each tuple as one *prefix*, encoded once
per chunk, so writing a chunk joins bytes.

The tables' columns are listed in that order: shared ones first, then the tail's.
"""

from collections.abc import Sequence

from customer_service.imports import copy_rows

FINGERPRINT_COLUMNS = ("store_id", "kind", "job_id", "fingerprint", "record_id")
TRAIL_COLUMNS = (
    "store_id",
    "kind",
    "reason",
    "by",
    "change_of_hands",
    "customer_id",
    "to_staff_id",
)
_FINGERPRINT_FIELDS = copy_rows.field_count(len(FINGERPRINT_COLUMNS))
_TRAIL_FIELDS = copy_rows.field_count(len(TRAIL_COLUMNS))


def fingerprint_tail(fingerprint: str, record_id: str) -> bytes:
    """A fingerprint row's own fields: the row's fingerprint and the file it became."""
    return copy_rows.text(fingerprint) + copy_rows.text(record_id)


def trail_tail(customer_id: str, owner_staff_id: str) -> bytes:
    """An ownership entry's own fields: the file and its owner."""
    return copy_rows.text(customer_id) + copy_rows.text(owner_staff_id)


def fingerprint_data(tails: Sequence[bytes], *, store_id: str, kind: str, job_id: str) -> bytes:
    """The COPY data of a chunk's fingerprints (``FINGERPRINT_COLUMNS``)."""
    prefix = (
        _FINGERPRINT_FIELDS
        + copy_rows.text(store_id)
        + copy_rows.text(kind)
        + copy_rows.text(job_id)
    )
    return _data(prefix, tails)


def trail_data(
    tails: Sequence[bytes], *, store_id: str, kind: str, reason: str, by: str, change_of_hands: bool
) -> bytes:
    """The COPY data of a chunk's ownership entries (``TRAIL_COLUMNS``)."""
    prefix = (
        _TRAIL_FIELDS
        + copy_rows.text(store_id)
        + copy_rows.text(kind)
        + copy_rows.text(reason)
        + copy_rows.text(by)
        + copy_rows.boolean(change_of_hands)
    )
    return _data(prefix, tails)


def _data(prefix: bytes, tails: Sequence[bytes]) -> bytes:
    if not tails:
        return copy_rows.copy_data(())
    return copy_rows.copy_data((prefix, prefix.join(tails)))
