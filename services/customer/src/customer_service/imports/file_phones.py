"""The files of a store having any of a chunk's phones, found by the phones' keyed hashes."""

from typing import Any

from crm_libs import text_lists

ACTIVE = frozenset({"active"})
# What a new file's phone may not share (a merged or erased file holds no phone in use).
TAKEN = frozenset({"active", "archived"})

# Looked up through the phone hashes' GIN index: a thousand entries for a chunk. Asked of the
# store (``store_id = $1``) the planner, whose statistics lag a table an import grows by a
# chunk at a time, took the store's btree index and compared each of the store's files with
# the thousand hashes (0.4 s a chunk at 20,000 files, growing with the store); with fresh
# statistics it took a sequential scan. Sequential scans are off for this statement only,
# and the store is compared in Python (a number's files in other stores are few).
# The hashes go as one text (crm_libs.text_lists).
FILES_WITH_PHONES = f"""
    SELECT id, store_id, status, phone_hashes FROM customer
    WHERE phone_hashes && {text_lists.split_sql("$1")}
"""  # noqa: S608 - only the split's constant expression is interpolated
NO_SEQSCAN = "SET LOCAL enable_seqscan = off"
RESET_SEQSCAN = "RESET enable_seqscan"
# Sequential scans off to the end of the transaction, as an expression for its first statement:
# a customers chunk, whose every look-up goes by an index, sets it once (each round trip costs
# a chunk more than its statement on a busy machine) and asks with ``seqscans_off``.
SEQSCANS_OFF = "set_config('enable_seqscan', 'off', true)"


async def files_with_phones(
    conn: Any,
    *,
    store_id: str,
    digests: list[str],
    statuses: frozenset[str],
    seqscans_off: bool = False,
) -> list[tuple[str, list[str]]]:
    """(id, phone_hashes) of the store's files in ``statuses`` having any of ``digests``;
    ``seqscans_off``: the transaction has them off already (``SEQSCANS_OFF``)."""
    if not digests:
        return []
    if seqscans_off:
        rows = await conn.fetch(FILES_WITH_PHONES, text_lists.joined(digests))
    else:
        async with conn.transaction():  # inside a chunk's transaction, a savepoint
            await conn.execute(NO_SEQSCAN)
            rows = await conn.fetch(FILES_WITH_PHONES, text_lists.joined(digests))
            # A savepoint keeps a SET LOCAL to the end of the enclosing transaction: not wanted.
            await conn.execute(RESET_SEQSCAN)
    return [
        (r["id"], r["phone_hashes"])
        for r in rows
        if r["store_id"] == store_id and r["status"] in statuses
    ]
