"""Engagement's read copy of the customer files, and what each applied change asks of the tasks."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.driver import driver_connection
from engagement_service.customers.events import CustomerChangeSeen

# A file in one of these states takes its open tasks with it, closed with the state as reason.
CLOSING_STATUSES = frozenset({"archived", "erased"})


@dataclass(frozen=True)
class FileState:
    """Where a customer's follow-ups belong now."""

    # The file that holds the customer's history: the customer's own, or the survivor of merges.
    customer_id: str
    owner_staff_id: str | None
    # None while engagement has seen no event of the file.
    status: str | None


@dataclass(frozen=True)
class OwnerChange:
    store_id: str
    customer_id: str
    owner_staff_id: str


@dataclass(frozen=True)
class Closure:
    store_id: str
    customer_id: str
    reason: str


@dataclass(frozen=True)
class Merge:
    store_id: str
    customer_id: str  # the merged-away file
    survivor: FileState


@dataclass
class FileChanges:
    """What the applied events ask of the tasks, carried out in this order."""

    owners: list[OwnerChange] = field(default_factory=list)
    closures: list[Closure] = field(default_factory=list)
    merges: list[Merge] = field(default_factory=list)


# A customer's events and purchases arrive on two topics whose partitions may belong to different
# members of the consumer group: each batch waits for the stores it touches (see lock_stores).
STORE_LOCK_SPACE = 72_365_101
_LOCK_STORES_SQL = text(
    """
    SELECT pg_advisory_xact_lock(CAST(:space AS integer), k.key)
    FROM (SELECT DISTINCT hashtext(s) AS key FROM unnest(CAST(:stores AS text[])) AS s) AS k
    ORDER BY k.key
    """
)

_HELD_SQL = text(
    """
    SELECT customer_id, version, owner_staff_id FROM customer_file
    WHERE customer_id = ANY(CAST(:ids AS text[]))
    FOR UPDATE
    """
)

# Follows merged_into from each asked id to the file now holding its history (bounded: a merge
# into itself or a cycle is refused by the customer service, and must not hang a consumer here).
_FILES_OF_SQL = text(
    """
    WITH RECURSIVE chain (asked, customer_id, depth) AS (
        SELECT a, a, 0 FROM unnest(CAST(:ids AS text[])) AS t(a)
        UNION ALL
        SELECT chain.asked, f.merged_into, chain.depth + 1
        FROM chain JOIN customer_file AS f ON f.customer_id = chain.customer_id
        WHERE f.status = 'merged' AND f.merged_into IS NOT NULL AND chain.depth < 16
    )
    SELECT DISTINCT ON (chain.asked) chain.asked, chain.customer_id, f.owner_staff_id, f.status
    FROM chain LEFT JOIN customer_file AS f ON f.customer_id = chain.customer_id
    ORDER BY chain.asked, chain.depth DESC
    """
)


async def lock_stores(session: AsyncSession, *, store_ids: Iterable[str]) -> None:
    """Wait until no other transaction works on these stores' files; held until this one ends.

    Taken once per batch, in one sorted statement (two members never wait on each other),
    before anything is read. Without it a purchase placed on one member while another applies a
    merge, an archive or a new owner would follow the file as it was, and the change, not seeing
    the purchase's uncommitted tasks, would leave them behind. By store rather than by customer:
    a batch names a few stores but up to thousands of customers (each lock a slot in the
    server's lock table), and a merge never crosses stores, so a survivor is always covered.
    """
    stores = sorted(set(store_ids))
    if stores:
        await session.execute(_LOCK_STORES_SQL, {"space": STORE_LOCK_SPACE, "stores": stores})


async def files_of(session: AsyncSession, *, customer_ids: set[str]) -> dict[str, FileState]:
    """The state of each customer's file as engagement knows it, merges followed."""
    if not customer_ids:
        return {}
    rows = await session.execute(_FILES_OF_SQL, {"ids": sorted(customer_ids)})
    return {
        r.asked: FileState(
            customer_id=r.customer_id, owner_staff_id=r.owner_staff_id, status=r.status
        )
        for r in rows
    }


async def apply_changes(session: AsyncSession, *, changes: list[CustomerChangeSeen]) -> FileChanges:
    """Keep the copy of each file at its newest version; say what the applied events ask of tasks.

    An event applies only if its version is newer than the copy's: a replay, a redelivery or an
    event overtaken by a newer one changes nothing. The caller holds the stores' locks
    (:func:`lock_stores`).
    """
    if not changes:
        return FileChanges()
    held = await session.execute(_HELD_SQL, {"ids": sorted({c.customer_id for c in changes})})
    version: dict[str, int] = {}
    owner: dict[str, str | None] = {}
    for row in held:
        version[row.customer_id], owner[row.customer_id] = row.version, row.owner_staff_id

    newest: dict[str, CustomerChangeSeen] = {}
    owners: dict[str, OwnerChange] = {}
    closures: dict[str, Closure] = {}
    merged: dict[str, CustomerChangeSeen] = {}
    ended: set[str] = set()
    # One customer's events in version order, as if applied one by one: its open tasks go to the
    # owner of the moment until the file ends (archived, erased or merged), and a merge moves
    # every task, closed ones too (the history follows the survivor).
    for change in sorted(changes, key=lambda c: c.version):
        c, file = change.customer_id, change.file
        if c in version and change.version <= version[c]:
            continue
        version[c] = change.version
        newest[c] = change
        # A new owner takes the open tasks; no owner (a file waiting in the store's pool) leaves
        # them with whoever has them rather than on nobody's list. The first event of a file
        # whose purchase came first (another topic: no order between the two) moves the tasks
        # that purchase gave to its staff member, as any change of owner would.
        new_owner = file.owner_staff_id
        if c not in ended and new_owner is not None and new_owner != owner.get(c):
            owner[c] = new_owner
            owners[c] = OwnerChange(change.store_id, c, new_owner)
        if file.status in CLOSING_STATUSES:
            if c not in ended:
                closures[c] = Closure(change.store_id, c, file.status)
            ended.add(c)
        elif file.status == "merged":
            merged[c] = change
            ended.add(c)
    if not newest:
        return FileChanges()
    await _upsert(session, rows=[_copied(change) for change in newest.values()])
    survivors = await files_of(
        session, customer_ids={m.merged_into for m in merged.values() if m.merged_into}
    )
    return FileChanges(
        owners=list(owners.values()),
        closures=list(closures.values()),
        merges=[
            Merge(m.store_id, c, survivors[m.merged_into])
            for c, m in merged.items()
            if m.merged_into
        ],
    )


# The copy's columns as _copied gives them, and their types: the attributes of the row type
# customer_file_copy (migration 0017) that _UPSERT_SQL is sent an array of.
_COPIED = {
    "customer_id": "text",
    "store_id": "text",
    "status": "text",
    "merged_into": "text",
    "timezone": "text",
    "owner_staff_id": "text",
    "birthday": "date",
    "birthday_calendar": "text",
    "wedding_anniversary": "date",
    "spouse_customer_id": "text",
    "sms_consent_granted": "boolean",
    "sms_consent_at": "timestamptz",
    "sms_consent_channel": "text",
    "version": "integer",
}
_COPIED_COLUMNS = tuple(_COPIED)


def _copied(change: CustomerChangeSeen) -> tuple[Any, ...]:
    """The copy's row for a file, a customer_file_copy in _COPIED's order; an erased file keeps
    its ids and status only."""
    file = change.file
    if file.status == "erased":
        return (
            change.customer_id,
            change.store_id,
            file.status,
            change.merged_into,
            *_ERASED,
            file.version,
        )
    sms = file.consents.sms
    return (
        change.customer_id,
        change.store_id,
        file.status,
        change.merged_into,
        file.timezone,
        file.owner_staff_id,
        file.birthday,
        file.birthday_calendar,
        file.wedding_anniversary,
        file.spouse_customer_id,
        sms.granted,
        sms.at,
        sms.channel,
        file.version,
    )


# An erased file's facts, from timezone to sms_consent_channel.
_ERASED = (None, None, None, None, None, None, False, None, None)


# The batch's newest version of each file in one statement (asyncpg's executemany executed the
# statement once per file: an import's registrations were a hundred thousand executions), as one
# array of rows rather than an array per column (asyncpg checks each element of an array for
# being an array itself, in Python: fourteen checks a file, now one). The version guard holds
# even against a concurrent writer. A later change of a merged-away file that does not repeat
# its survivor keeps pointing there.
_UPSERT_SQL = f"""
    INSERT INTO customer_file ({", ".join(_COPIED_COLUMNS)})
    SELECT * FROM unnest($1::customer_file_copy[])
    ON CONFLICT (customer_id) DO UPDATE SET
        {", ".join(f"{c} = excluded.{c}" for c in _COPIED_COLUMNS[1:] if c != "merged_into")},
        merged_into = CASE WHEN excluded.status = 'merged'
                           THEN COALESCE(excluded.merged_into, customer_file.merged_into) END,
        updated_at = now()
    WHERE customer_file.version < excluded.version
"""  # noqa: S608 - constants


async def _upsert(session: AsyncSession, *, rows: list[tuple[Any, ...]]) -> None:
    """Write the copy's rows (one per file, each file once)."""
    await (await driver_connection(session)).execute(_UPSERT_SQL, rows)
