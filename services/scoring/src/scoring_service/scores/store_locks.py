"""The stores' advisory locks: one transaction at a time reads and writes a store's spend,
tiers and classifications.

Several replicas consume in one group, so two transactions may touch one store at once. Each
takes a per-store advisory lock before it reads or writes any spend or tier of that store; the
next one waits for the commit and, in READ COMMITTED, every later statement of it sees what the
first committed. Without it a re-rank works on a snapshot that lacks the other member's spend
and writes stale tiers (or two re-ranks deadlock on each other's rows).
"""

from collections.abc import Iterable

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.driver import driver_connection

# The two-int advisory lock space of "re-ranking store X" (disjoint from the one-bigint space of
# the window-refresh leader lock); the second int is hashtext(store_id). Taken in key order,
# so members locking overlapping sets of stores never deadlock, even if two stores' hashes
# collide (they then merely share a lock). Sorted after the ORDER BY: the planner evaluates a
# volatile target list above the sort.
RERANK_LOCK_SPACE = 72_365_002
_LOCK_STORES_SQL = """
    SELECT pg_advisory_xact_lock($1::integer, k.key)
    FROM (SELECT DISTINCT hashtext(s) AS key FROM unnest($2::text[]) AS s) AS k
    ORDER BY k.key
"""


async def lock_stores(session: AsyncSession, *, store_ids: Iterable[str]) -> None:
    """Wait until no other transaction re-ranks these stores; held until this one ends.

    Taken before any spend or tier of the stores is read (each statement after it then sees
    what the previous holder committed) and before any of their rows is locked."""
    await lock_stores_on(await driver_connection(session), store_ids)


async def lock_stores_on(db: asyncpg.Connection, store_ids: Iterable[str]) -> None:
    """:func:`lock_stores` on the driver's connection."""
    stores = sorted(set(store_ids))
    if stores:
        await db.execute(_LOCK_STORES_SQL, RERANK_LOCK_SPACE, stores)
