"""What the benchmarks measure of the PostgreSQL cluster beside time: the WAL it writes, its
busiest statements (pg_stat_statements), autovacuum's time by table, and its processes' CPU by
database or role."""

from __future__ import annotations

from pathlib import Path

import asyncpg
from proc_cpu import children_of, cpu_seconds, postmaster_pid

from crm_devstack.stack import LocalStack
from crm_libs.db import asyncpg_dsn


class WalMeter:
    """The WAL the whole cluster wrote (all three services' databases share it), and the
    checkpoints, between start and stop."""

    _READ = (
        "SELECT pg_current_wal_lsn()::text AS lsn, "
        "(SELECT num_timed + num_requested FROM pg_stat_checkpointer) AS checkpoints"
    )
    # Bytes since the position start() read, and the checkpoints now.
    _SINCE = (
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::text::pg_lsn) AS written, "
        "(SELECT num_timed + num_requested FROM pg_stat_checkpointer) AS checkpoints"
    )

    def __init__(self, stack: LocalStack, lsn: str, checkpoints: int) -> None:
        self._stack, self._lsn, self._checkpoints = stack, lsn, checkpoints

    @classmethod
    async def start(cls, stack: LocalStack) -> WalMeter:
        row = await cls._fetch(stack, cls._READ)
        return cls(stack, row["lsn"], row["checkpoints"])

    async def stop(self) -> str:
        row = await self._fetch(self._stack, self._SINCE, self._lsn)
        return (
            f"WAL written: {float(row['written']) / 1e6:,.0f} MB, checkpoints started: "
            f"{row['checkpoints'] - self._checkpoints}"
        )

    @staticmethod
    async def _fetch(stack: LocalStack, query: str, *args: object) -> asyncpg.Record:
        conn = await asyncpg.connect(stack.postgres.url("postgres", driver="postgresql"))
        try:
            return await conn.fetchrow(query, *args)
        finally:
            await conn.close()


async def enable_statement_stats(stack: LocalStack) -> None:
    """pg_stat_statements loaded at PostgreSQL's start (the caller restarts it)."""
    await _execute(
        stack,
        "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'",
        "ALTER SYSTEM SET pg_stat_statements.max = 1000",
    )


async def reset_statements(stack: LocalStack) -> None:
    await _execute(
        stack,
        "CREATE EXTENSION IF NOT EXISTS pg_stat_statements",
        "SELECT pg_stat_statements_reset()",
    )


async def _execute(stack: LocalStack, *statements: str) -> None:
    """``statements`` run in turn in the cluster's ``postgres`` database."""
    conn = await asyncpg.connect(stack.postgres.url("postgres", driver="postgresql"))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def top_statements(stack: LocalStack, limit: int = 15) -> list[str]:
    """Every database's statements by total execution time since the reset."""
    conn = await asyncpg.connect(stack.postgres.url("postgres", driver="postgresql"))
    try:
        rows = await conn.fetch(
            "SELECT d.datname, s.calls, s.rows, s.total_exec_time, s.wal_bytes, s.wal_fpi, "
            "s.query "
            "FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
            "ORDER BY s.total_exec_time DESC LIMIT $1",
            limit,
        )
    finally:
        await conn.close()
    # The WAL each wrote (full-page images among it: the first change to a page after a
    # checkpoint logs the whole page), beside its time: WAL is most of what an import writes.
    return [
        f"  {r['total_exec_time'] / 1000:6.2f} s {r['calls']:>8,} calls {r['rows']:>9,} rows "
        f"{float(r['wal_bytes']) / 1e6:6.0f} MB WAL {r['wal_fpi']:>7,} FPI "
        f"{r['datname']:<16} {' '.join(r['query'].split())[:90]}"
        for r in rows
    ]


async def autovacuum_by_table(stack: LocalStack, limit: int = 10) -> list[str]:
    """Each service database's tables by the time autovacuum and autoanalyze spent on them
    (the stack is new: all of it during this run, nearly all during the import)."""
    found = []
    for service in ("customer", "engagement", "scoring"):
        conn = await asyncpg.connect(asyncpg_dsn(stack.database_url(service)))
        try:
            rows = await conn.fetch(
                "SELECT relname, autovacuum_count, autoanalyze_count, "
                "total_autovacuum_time, total_autoanalyze_time FROM pg_stat_user_tables "
                "WHERE total_autovacuum_time + total_autoanalyze_time > 0"
            )
        finally:
            await conn.close()
        found += [(service, r) for r in rows]
    found.sort(key=lambda f: -(f[1]["total_autovacuum_time"] + f[1]["total_autoanalyze_time"]))
    return [
        f"  {service:<10} {r['relname']:<24} vacuum {r['autovacuum_count']:>3}x "
        f"{r['total_autovacuum_time'] / 1000:5.2f} s, analyze {r['autoanalyze_count']:>3}x "
        f"{r['total_autoanalyze_time'] / 1000:5.2f} s"
        for service, r in found[:limit]
    ]


class BackendCpu:
    """PostgreSQL's CPU seconds per process title: a client backend by its database, the
    others by their role (walwriter, autovacuum worker…). Processes gone by the end (a closed
    connection) are counted under ``exited``."""

    def __init__(self, stack: LocalStack) -> None:
        self._postmaster = postmaster_pid(stack) or 0
        self._start: dict[int, tuple[str, float]] = {}
        self.used: dict[str, float] = {}

    def _sample(self) -> dict[int, tuple[str, float]]:
        found = {}
        for pid in children_of(self._postmaster):
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            found[pid] = (_backend_kind(title.replace("\0", " ")), cpu_seconds(pid))
        return found

    def start(self) -> None:
        self._start = self._sample()
        self._reaped = cpu_seconds(self._postmaster, with_reaped_children=True)

    def stop(self) -> None:
        end = self._sample()
        used: dict[str, float] = {}
        for pid, (kind, seconds) in end.items():
            used[kind] = used.get(kind, 0.0) + seconds - self._start.get(pid, (kind, 0.0))[1]
        gone = sum(s for pid, (_, s) in self._start.items() if pid not in end)
        reaped = cpu_seconds(self._postmaster, with_reaped_children=True) - self._reaped
        used["exited"] = reaped - gone
        self.used = used

    def lines(self) -> list[str]:
        ranked = sorted(self.used.items(), key=lambda kv: -kv[1])
        return ["  " + ", ".join(f"{kind} {secs:.1f} s" for kind, secs in ranked if secs >= 0.05)]


def _backend_kind(title: str) -> str:
    # "postgres: postgres crm_customer 127.0.0.1(40312) idle" or "postgres: walwriter"
    words = title.removeprefix("postgres: ").split()
    if len(words) >= 3 and "(" in words[2]:
        return words[1]
    return " ".join(w for w in words if w.isalpha())[:30] or title[:30]
