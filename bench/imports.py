"""Import of 100,000 customer rows: the service's job against a bare COPY, in the same run.

    uv run python bench/imports.py [--count 100000] [--profile imports.svg]

Generates the rows (bench/people.py: realistic names, phones typed the ways staff type them,
a third of the birthdays lunar, each served by one of the store's ten staff members named in
the 服务代表 column) as a CSV sheet with Chinese headers, starts the whole stack, and times:

- the import: from ``POST /api/v1/imports`` through the gateway to the job reading ``done``
  (the sheet read and checked, each row through the registration's checks, phones encrypted
  and hashed, name keys, COPY per chunk with its outbox rows and the owners' first entries on
  the ownership trail, errors and progress);
- a bare COPY of as many rows into the same ``customer`` table (another store, same indexes),
  with every column the import fills computed beforehand (outside the timing): once just
  before the import and once just after (other people each time), the files' table vacuumed
  and the relay's backlog sent between the timed parts.

Prints rows/s of each and the ratio of the import's to the two COPYs' mean (the target is 0.3
or above): the machine's speed drifts over a run on a shared host, and a COPY on either side of
the import sees the same drift. With ``--profile`` the
customer service is sampled by py-spy during the import (py-spy must be on PATH). With
``--statements`` PostgreSQL runs with pg_stat_statements, and the statements of every database
that took the most time during the import are printed, with PostgreSQL's CPU by database.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import signal
import sys
import time
from datetime import date
from pathlib import Path

import asyncpg
import httpx
from cluster_meters import (
    BackendCpu,
    WalMeter,
    autovacuum_by_table,
    enable_statement_stats,
    reset_statements,
    top_statements,
)
from people import people
from proc_cpu import CpuMeter
from support import log, record_profile, temp_stack

from crm_devstack.stack import LocalStack
from crm_libs import text_lists
from crm_libs.db import asyncpg_dsn
from customer_service.config import DEV_FIELD_KEY, DEV_PHONE_HASH_KEY
from customer_service.imports import customer_checks, file_phones
from customer_service.imports.customer_rows import read_customer_row
from customer_service.imports.sheets import open_sheet

HEADERS = ["姓名", "性别", "手机", "生日", "历法", "服务代表"]
# The store's serving staff (created in both stores), named by the sheet's 服务代表 column.
STAFF = ("李娜", "王静", "张敏", "刘洋", "陈晨", "杨帆", "赵丽", "黄磊", "周婷", "吴霞")
GENDERS = {"female": "女", "male": "男", "other": "其他"}
CALENDARS = {"solar": "公历", "lunar": "农历"}


def sheet(count: int, seed: int, *, owners: bool = True) -> bytes:
    """The sheet; without ``owners`` no 服务代表 column (as the rounds before it measured)."""
    text = io.StringIO()
    out = csv.writer(text, lineterminator="\n")
    out.writerow(HEADERS if owners else HEADERS[:-1])
    for i, p in enumerate(people(count, seed=seed)):
        gender, calendar = GENDERS[p.gender], CALENDARS[p.birthday_calendar]
        row = [p.name, gender, p.phone_typed, p.birthday, calendar, STAFF[i % len(STAFF)]]
        out.writerow(row if owners else row[:-1])
    return text.getvalue().encode()


def precomputed(
    content: bytes, *, store_id: str, staff: dict[str, str]
) -> list[tuple[object, ...]]:
    """The records the import writes for these rows, for the bare COPY (duplicates of a phone
    dropped as the import reports them; ``staff``: the store's staff ids by name)."""
    context = customer_checks.StoreContext(
        store_id=store_id,
        timezone="Asia/Shanghai",
        field_keys=(DEV_FIELD_KEY,),
        phone_hash_key=DEV_PHONE_HASH_KEY,
        staff_by_name={name: (staff_id,) for name, staff_id in staff.items()},
        staff_ids=frozenset(staff.values()),
    )
    parsed = open_sheet(io.BytesIO(content), kind="customers")
    records = []
    seen: set[str] = set()
    for row in parsed.rows:
        candidate = read_customer_row(row, parsed.columns, today=date.today())
        if isinstance(candidate, list):
            continue
        customer = customer_checks.customer_of(
            candidate,
            context=context,
            owner_staff_id=staff[candidate.owner] if candidate.owner else None,
            referrer_id=None,
        )
        if isinstance(customer, list) or any(h in seen for h in customer.phone_hashes):
            continue
        seen.update(customer.phone_hashes)
        records.append(customer_checks.record_of(customer))
    return records


async def run(stack: LocalStack, args: argparse.Namespace) -> None:
    content = sheet(args.count, args.seed, owners=not args.no_owners)
    log(f"sheet: {args.count:,} rows, {len(content) / 1e6:.1f} MB")
    api = stack.url("gateway") + "/api/v1"
    async with httpx.AsyncClient(base_url=api, timeout=120) as client:
        token = (
            await client.post(
                "/auth/token", json={"username": "admin", "password": stack.admin_password}
            )
        ).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        stores = []
        for code in ("IMPORT", "COPY-BEFORE", "COPY-AFTER"):
            response = await client.post(
                "/stores",
                json={"code": f"BENCH-{code}", "name": code, "timezone": "Asia/Shanghai"},
            )
            response.raise_for_status()
            stores.append(response.json()["id"])
        staff: dict[str, dict[str, str]] = {store_id: {} for store_id in stores}
        for name in STAFF:
            for store_id in stores:
                response = await client.post(
                    "/staff", json={"store_id": store_id, "name": name, "role": "staff"}
                )
                response.raise_for_status()
                staff[store_id][name] = response.json()["id"]

        # Other people (other phones) than the import's: the import's phone checks must not
        # meet the first COPY's files in the index.
        log("precomputing the COPYs' records …")
        copies = [
            await asyncio.to_thread(
                precomputed,
                sheet(args.count, args.seed + n, owners=not args.no_owners),
                store_id=store_id,
                staff=staff[store_id],
            )
            for n, store_id in enumerate(stores[1:], 1)
        ]
        before = await bare_copy(stack, copies[0])
        await settle(stack)

        profiler = (
            record_profile(stack.pids()[args.profile_service], args.profile, rate=50)
            if args.profile
            else None
        )
        backends = BackendCpu(stack) if args.statements else None
        if backends is not None:
            await reset_statements(stack)
            backends.start()
        pids = {name: pid for name, pid in stack.pids().items() if name != "gateway"}
        # The customer service with its row checks' processes, and its own process alone.
        pids["customer's own process"] = pids["customer"]
        meter = CpuMeter(pids, trees=("postgres", "customer", "scoring", "engagement"))
        wal = await WalMeter.start(stack)
        meter.start()
        started = time.perf_counter()
        response = await client.post(
            "/imports",
            data={"store_id": stores[0]},
            files={"file": ("people.csv", content, "text/csv")},
        )
        response.raise_for_status()
        job = response.json()
        while job["status"] not in ("done", "failed"):
            await asyncio.sleep(_poll_interval(job))
            job = (await client.get(f"/imports/{job['id']}")).json()
        imported = time.perf_counter() - started
        meter.stop()
        wal_line = await wal.stop()
        statements = await top_statements(stack) if backends is not None else []
        vacuums = await autovacuum_by_table(stack) if backends is not None else []
        if backends is not None:
            backends.stop()
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            profiler.wait()
        if job["status"] != "done":
            raise SystemExit(f"the import failed: {job}")

    conn = await asyncpg.connect(asyncpg_dsn(stack.database_url("customer")))
    try:
        plan = await _phone_check_plan(conn, store_id=stores[0])
        timeline = await _timeline(conn, job_id=job["id"], store_id=stores[0])
        trail = await conn.fetchval(
            "SELECT count(*) FROM ownership_change WHERE store_id = $1", stores[0]
        )
    finally:
        await conn.close()
    await settle(stack)
    after = await bare_copy(stack, copies[1])

    import_rate = job["created"] / imported
    # The machine's speed drifts over a minute (a shared host): the baseline is the mean of a
    # COPY just before the import and one just after, each of as many other rows.
    copy_rates = [len(copies[0]) / before, len(copies[1]) / after]
    copy_rate = sum(copy_rates) / len(copy_rates)
    print(
        f"import job: {job['created']:,} files written ({job['error_count']:,} rows reported) in "
        f"{imported:.2f} s = {import_rate:,.0f} rows/s (POST to done, through the gateway)"
    )
    print(f"  their owners' first entries on the ownership trail: {trail:,}")
    print(f"  {timeline}")
    print(
        f"bare COPY: {len(copies[0]):,} rows just before in {before:.2f} s, {len(copies[1]):,} "
        f"just after in {after:.2f} s = {copy_rates[0]:,.0f} and {copy_rates[1]:,.0f} rows/s, "
        f"mean {copy_rate:,.0f}"
    )
    print(f"ratio import/COPY: {import_rate / copy_rate:.3f} (target 0.3)")
    print("during the import (the relay runs in the customer service):")
    print("\n".join(meter.lines()))
    print(f"  {wal_line}")
    if backends is not None:
        print("PostgreSQL's CPU during the import, by database (client backends) or process:")
        print("\n".join(backends.lines()))
        print("statements that took the most time during the import (pg_stat_statements):")
        print("\n".join(statements))
        print("autovacuum and autoanalyze by table during the import (PostgreSQL 18's times):")
        print("\n".join(vacuums))
    print("a chunk's phone check over the imported files (1,000 hashes):")
    print("\n".join(f"  {line[:200]}" for line in plan))


# The job is asked for its progress twice a second while more than two chunks are left, then
# twenty times: the end is still seen within 50 ms, and the polling (a request through the
# gateway and the service, two statements, a hundred errors serialised each time) no longer
# costs the import's processes what asking ten times a second all along did.
_POLL_SLOW, _POLL_FAST, _NEAR_END_ROWS = 0.5, 0.05, 2000


def _poll_interval(job: dict[str, object]) -> float:
    total, done = job.get("total"), job.get("done")
    if isinstance(total, int) and isinstance(done, int) and total - done > _NEAR_END_ROWS:
        return _POLL_SLOW
    return _POLL_FAST


async def bare_copy(stack: LocalStack, records: list[tuple[object, ...]]) -> float:
    """Seconds to COPY ``records`` into the ``customer`` table in one transaction."""
    conn = await asyncpg.connect(asyncpg_dsn(stack.database_url("customer")))
    try:
        started = time.perf_counter()
        async with conn.transaction():
            await conn.copy_records_to_table(
                "customer", records=records, columns=customer_checks.COLUMNS
            )
        return time.perf_counter() - started
    finally:
        await conn.close()


async def settle(stack: LocalStack, *, timeout: float = 60.0) -> None:
    """Between the timed parts: the relay's backlog sent and the files' table vacuumed and
    analysed, so that neither part pays for what the one before left to do."""
    conn = await asyncpg.connect(asyncpg_dsn(stack.database_url("customer")))
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM outbox_event WHERE published_at IS NULL "
                "AND parked_at IS NULL)"
            ):
                break
            await asyncio.sleep(0.2)
        await conn.execute("VACUUM (ANALYZE) customer")
    finally:
        await conn.close()


async def _timeline(conn: asyncpg.Connection, *, job_id: str, store_id: str) -> str:
    """When the job was stored, claimed, its first and last chunks committed and it finished,
    in seconds from its upload's row (the files' ``created_at`` is their transaction's start)."""
    row = await conn.fetchrow(
        "SELECT j.created_at, j.started_at, j.finished_at, "
        "(SELECT min(created_at) FROM customer WHERE store_id = $2) AS first, "
        "(SELECT max(created_at) FROM customer WHERE store_id = $2) AS last "
        "FROM import_job j WHERE j.id = $1",
        job_id,
        store_id,
    )
    at = {
        k: (row[k] - row["created_at"]).total_seconds()
        for k in ("started_at", "first", "last", "finished_at")
    }
    return (
        f"job stored at 0, claimed at {at['started_at']:.2f} s, first chunk written from "
        f"{at['first']:.2f} s, last from {at['last']:.2f} s, finished at {at['finished_at']:.2f} s"
    )


async def _phone_check_plan(conn: asyncpg.Connection, *, store_id: str) -> list[str]:
    """EXPLAIN ANALYZE of the per-chunk phone duplicate check, with 1,000 hashes of the files
    just imported (each found once): the plan the job met on every chunk, at its end."""
    hashes: list[str] = await conn.fetchval(
        "SELECT array_agg(h) FROM (SELECT phone_hashes[1] AS h FROM customer "
        "WHERE store_id = $1 LIMIT 1000) t",
        store_id,
    )
    async with conn.transaction():
        await conn.execute(file_phones.NO_SEQSCAN)
        rows = await conn.fetch(
            "EXPLAIN (ANALYZE, BUFFERS) " + file_phones.FILES_WITH_PHONES,
            text_lists.joined(hashes),
        )
    return [r[0] for r in rows]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--no-owners",
        action="store_true",
        help="no 服务代表 column: files without an owner, so no ownership trail rows",
    )
    parser.add_argument("--profile", help="write a py-spy profile of the import here")
    parser.add_argument(
        "--profile-service", default="customer", help="the service --profile samples"
    )
    parser.add_argument(
        "--statements",
        action="store_true",
        help="PostgreSQL with pg_stat_statements: its busiest statements and CPU by database",
    )
    args = parser.parse_args()
    with temp_stack("crm-bench-imports-") as stack:
        log(f"starting the stack in {stack.data_dir} …")
        if args.statements:
            stack.start_postgres()
            asyncio.run(enable_statement_stats(stack))
            stack.postgres.stop()
        stack.start()
        asyncio.run(run(stack, args))
    if args.profile:
        log(f"profile: {Path(args.profile).resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
