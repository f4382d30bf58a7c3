"""The analysis's reads: one transaction whose statements are planned for the values they run
with, with memory enough to hash their groups.

asyncpg prepares every statement and keeps it per connection; after five executions PostgreSQL
may switch a prepared statement to its generic plan, planned without the period's bounds (the
period estimated at 0.5 % of the store: an index scan of every purchase and a sort of them all,
about twice the planned time, bench/README.md's ``analysis.py``). A pool serving these routes all
day runs every connection past five executions, so each read says to plan per call.

``work_mem``: a grouping by key and customer over a year of a large store holds some hundred
thousand groups; with the default 4 MB PostgreSQL sorts them on disk instead of hashing.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

WORK_MEM = "64MB"
_SETTINGS_SQL = f"""
    SELECT set_config('plan_cache_mode', 'force_custom_plan', true),
           set_config('work_mem', '{WORK_MEM}', true)
"""


@asynccontextmanager
async def planned_per_call(db: asyncpg.Connection) -> AsyncIterator[None]:
    """A read transaction whose statements are planned per call (the settings end with it)."""
    async with db.transaction():
        await db.execute(_SETTINGS_SQL)
        yield
