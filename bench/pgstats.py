"""PostgreSQL's own statistics, read by the benchmarks (``pg_stat_database``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg

CUSTOMER_DB = "crm_customer"
GATEWAY_DB = "crm_gateway"
# A backend publishes its counts to pg_stat_database when it goes idle, but at most once a
# second: what it did within a second of its last report waits up to 10 s more (PGSTAT_IDLE_
# INTERVAL). The counts are read once they have not moved for longer than that.
STATS_QUIET_SECONDS = 11.0


@dataclass(frozen=True)
class GatewayDb:
    """Counters of the gateway's database (``pg_stat_database``), or a difference of two."""

    transactions: int = 0  # commits and rollbacks
    sessions: int = 0  # connections opened

    def __sub__(self, other: GatewayDb) -> GatewayDb:
        return GatewayDb(self.transactions - other.transactions, self.sessions - other.sessions)


async def customer_db_sessions(conn: asyncpg.Connection) -> int:
    """Sessions ever opened to the customer database (a pool that churns opens many)."""
    return int(
        await conn.fetchval("SELECT sessions FROM pg_stat_database WHERE datname = $1", CUSTOMER_DB)
    )


async def gateway_db_counters(conn: asyncpg.Connection) -> GatewayDb:
    """The gateway database's transactions and connections so far, once the counts are quiet.

    Commits and rollbacks: a read-only session (the API-key lookup) ends with a rollback. Read
    from a connection to another database, so these queries do not count themselves."""

    async def read() -> GatewayDb:
        row = await conn.fetchrow(
            "SELECT xact_commit + xact_rollback AS transactions, sessions"
            " FROM pg_stat_database WHERE datname = $1",
            GATEWAY_DB,
        )
        return GatewayDb(int(row["transactions"]), int(row["sessions"]))

    value = await read()
    for _ in range(10):
        await asyncio.sleep(STATS_QUIET_SECONDS)
        again = await read()
        if again == value:
            break
        value = again
    return value


async def set_autovacuum(conn: asyncpg.Connection, *, on: bool) -> None:
    """Autovacuum visits every database about once a minute and runs a few transactions in it,
    which would count as the gateway's; it is paused while they are counted (throwaway server)."""
    await conn.execute(
        "ALTER SYSTEM RESET autovacuum" if on else "ALTER SYSTEM SET autovacuum = off"
    )
    await conn.execute("SELECT pg_reload_conf()")
