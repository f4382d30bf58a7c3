"""Rows imported before, for a store importing its first sheet: the job keeps its own
fingerprints in hand and reads the store's only while another customers job of the store runs
or has finished since it began (customer_import.py's ``_IMPORTED_BEFORE``). Two jobs of one
sheet writing side by side still write each row once."""

import io
from datetime import date

import asyncpg
import httpx

from crm_devstack.stack import LocalStack
from crm_libs import text_lists
from crm_libs.db import asyncpg_dsn
from customer_service.config import DEV_FIELD_KEY, DEV_PHONE_HASH_KEY
from customer_service.imports import customer_checks, customer_import
from customer_service.imports.customer_checks import StoreContext
from customer_service.imports.sheets import open_sheet
from tests.builders import create_store

KIND = customer_checks.KIND


async def _job(conn: asyncpg.Connection, store_id: str, name: str, *, kind: str = KIND) -> str:
    job_id = f"{name}-{store_id}"
    await conn.execute(
        "INSERT INTO import_job (id, store_id, kind, size, created_by, status, started_at) "
        "VALUES ($1, $2, $3, 1, 'test', 'queued', now())",
        job_id,
        store_id,
        kind,
    )
    return job_id


async def test_a_job_alone_in_its_store_reads_other_jobs_fingerprints_only_while_they_run(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    store = (await create_store(api))["id"]
    conn = await asyncpg.connect(asyncpg_dsn(stack.database_url("customer")))
    try:
        mine, other = await _job(conn, store, "mine"), await _job(conn, store, "other")
        purchases = await _job(conn, store, "till", kind="purchases")
        await conn.execute(
            "UPDATE import_job SET status = 'running' WHERE id IN ($1, $2)", mine, purchases
        )
        await conn.execute(
            "INSERT INTO import_fingerprint (store_id, kind, fingerprint, job_id, record_id) "
            "VALUES ($1, $2, 'k1', $3, 'c1')",
            store,
            KIND,
            other,
        )

        async def before(alone: str | None) -> set[str]:
            return await customer_import.imported_before(
                conn, store_id=store, kind=KIND, keys=["k1", "k2"], alone_job=alone
            )

        # Alone (the other customers job still queued, a purchases job running): the index
        # is not read at all.
        assert await before(mine) == set()
        plan = "\n".join(
            r[0]
            for r in await conn.fetch(
                "EXPLAIN (ANALYZE, COSTS OFF) " + customer_import._IMPORTED_BEFORE,
                store,
                KIND,
                text_lists.joined(["k1", "k2"]),
                mine,
            )
        )
        assert "One-Time Filter" in plan and "never executed" in plan, plan
        # Asked without a job keeping its own: always read.
        assert await before(None) == {"k1"}
        # The other job runs: read.
        await conn.execute("UPDATE import_job SET status = 'running' WHERE id = $1", other)
        assert await before(mine) == {"k1"}
        # It finished after this one began: read.
        await conn.execute(
            "UPDATE import_job SET status = 'done', finished_at = now() WHERE id = $1", other
        )
        assert await before(mine) == {"k1"}
        # Finished before this one began, it is none of this one's business: a job that
        # found fingerprints of its store when it began reads them all (it keeps no own).
        await conn.execute(
            "UPDATE import_job SET finished_at = now() - interval '1 hour' WHERE id = $1", other
        )
        assert await before(mine) == set()
    finally:
        await conn.close()


SHEET = "姓名,性别\n甲一,女\n乙二,男\n丙三,女\n".encode()


async def test_two_jobs_of_one_sheet_side_by_side_write_each_row_once(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    """Rows without a phone (no phone check to stop a second copy): each job keeping its own
    fingerprints, and a job repeating its own rows, still write each file once."""
    store = (await create_store(api))["id"]
    context = StoreContext(
        store_id=store,
        timezone="Asia/Shanghai",
        field_keys=(DEV_FIELD_KEY,),
        phone_hash_key=DEV_PHONE_HASH_KEY,
        staff_by_name={},
        staff_ids=frozenset(),
    )
    parsed = open_sheet(io.BytesIO(SHEET), kind="customers")
    raw = customer_checks.raw_rows(parsed.rows, 10)

    def chunk() -> customer_checks.CheckedChunk:
        return customer_checks.check_rows(
            raw, columns=parsed.columns, today=date.today(), context=context
        )

    conn = await asyncpg.connect(asyncpg_dsn(stack.database_url("customer")))
    try:
        first, second = await _job(conn, store, "first"), await _job(conn, store, "second")
        await conn.execute(
            "UPDATE import_job SET status = 'running' WHERE id IN ($1, $2)", first, second
        )
        own = {first: customer_import.OwnKeys(), second: customer_import.OwnKeys()}

        async def write(job_id: str) -> tuple[int, int]:
            async with conn.transaction():
                progress = await customer_import.write_chunk(
                    conn, chunk=chunk(), context=context, job_id=job_id, by="test", own=own[job_id]
                )
            return progress.created, progress.skipped

        assert await write(first) == (3, 0)
        assert await write(second) == (0, 3)  # the first job runs: its rows are read
        assert await write(first) == (0, 3)  # its own rows, found in hand
        await conn.execute(
            "UPDATE import_job SET status = 'done', finished_at = now() WHERE id = $1", first
        )
        assert await write(second) == (0, 3)  # the first finished since the second began
        names = await conn.fetch("SELECT name FROM customer WHERE store_id = $1", store)
        assert sorted(r["name"] for r in names) == ["丙三", "乙二", "甲一"]
    finally:
        await conn.close()
