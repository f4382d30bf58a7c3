"""Import of 100,000 customer rows: the service's job against a bare COPY, in the same run.

    uv run python bench/imports.py [--count 100000] [--profile imports.svg]

Generates the rows (bench/people.py: realistic names, phones typed the ways staff type them,
a third of the birthdays lunar) as a CSV sheet with Chinese headers, starts the whole stack,
and times:

- the import: from ``POST /api/v1/imports`` through the gateway to the job reading ``done``
  (the sheet read and checked, each row through the registration's checks, phones encrypted
  and hashed, name keys, COPY per chunk with its outbox rows, errors and progress);
- a bare COPY of the same rows into the same ``customer`` table (another store, same indexes),
  with every column the import fills computed beforehand (outside the timing).

Prints rows/s of each and their ratio (the target is 0.3 or above). With ``--profile`` the
customer service is sampled by py-spy during the import (py-spy must be on PATH).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import shutil
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import asyncpg
import httpx
from people import people
from support import CpuMeter, log, temp_stack

from crm_devstack.stack import LocalStack
from crm_libs.db import asyncpg_dsn
from crm_libs.field_crypto import FieldCipher
from customer_service.config import DEV_FIELD_KEY, DEV_PHONE_HASH_KEY
from customer_service.imports import customer_import, file_phones
from customer_service.imports.customer_rows import read_customer_row
from customer_service.imports.sheets import open_sheet

HEADERS = ["姓名", "性别", "手机", "生日", "历法"]
GENDERS = {"female": "女", "male": "男", "other": "其他"}
CALENDARS = {"solar": "公历", "lunar": "农历"}


def sheet(count: int, seed: int) -> bytes:
    text = io.StringIO()
    out = csv.writer(text, lineterminator="\n")
    out.writerow(HEADERS)
    for p in people(count, seed=seed):
        out.writerow(
            [p.name, GENDERS[p.gender], p.phone_typed, p.birthday, CALENDARS[p.birthday_calendar]]
        )
    return text.getvalue().encode()


def precomputed(content: bytes, *, store_id: str) -> list[tuple[object, ...]]:
    """The records the import writes for these rows, for the bare COPY (duplicates of a phone
    dropped as the import reports them)."""
    context = customer_import.StoreContext(
        store_id=store_id,
        timezone="Asia/Shanghai",
        cipher=FieldCipher([DEV_FIELD_KEY]),
        phone_hash_key=DEV_PHONE_HASH_KEY,
        staff_by_name={},
        staff_ids=frozenset(),
    )
    parsed = open_sheet(io.BytesIO(content), kind="customers")
    records = []
    seen: set[str] = set()
    for row in parsed.rows:
        candidate = read_customer_row(row, parsed.columns, today=date.today())
        if isinstance(candidate, list):
            continue
        customer = customer_import.customer_of(
            candidate, context=context, owner_staff_id=None, referrer_id=None
        )
        if isinstance(customer, list) or any(h in seen for h in customer.phone_hashes):
            continue
        seen.update(customer.phone_hashes)
        records.append(customer_import.record_of(customer))
    return records


async def run(stack: LocalStack, args: argparse.Namespace) -> None:
    content = sheet(args.count, args.seed)
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
        for code in ("IMPORT", "COPY"):
            response = await client.post(
                "/stores",
                json={"code": f"BENCH-{code}", "name": code, "timezone": "Asia/Shanghai"},
            )
            response.raise_for_status()
            stores.append(response.json()["id"])

        log("precomputing the COPY's records …")
        records = await asyncio.to_thread(precomputed, content, store_id=stores[1])

        profiler = _profiler(stack, args.profile, args.profile_service) if args.profile else None
        meter = CpuMeter(
            {name: pid for name, pid in stack.pids().items() if name != "gateway"},
            trees=("postgres", "customer", "scoring", "engagement"),
        )
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
            await asyncio.sleep(0.1)
            job = (await client.get(f"/imports/{job['id']}")).json()
        imported = time.perf_counter() - started
        meter.stop()
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            profiler.wait()
        if job["status"] != "done":
            raise SystemExit(f"the import failed: {job}")

    conn = await asyncpg.connect(asyncpg_dsn(stack.database_url("customer")))
    try:
        plan = await _phone_check_plan(conn, store_id=stores[0])
        started = time.perf_counter()
        async with conn.transaction():
            await conn.copy_records_to_table(
                "customer", records=records, columns=customer_import.COLUMNS
            )
        copied = time.perf_counter() - started
    finally:
        await conn.close()

    import_rate = job["created"] / imported
    copy_rate = len(records) / copied
    print(
        f"import job: {job['created']:,} files written ({job['error_count']:,} rows reported) in "
        f"{imported:.2f} s = {import_rate:,.0f} rows/s (POST to done, through the gateway)"
    )
    print(f"bare COPY: {len(records):,} rows in {copied:.2f} s = {copy_rate:,.0f} rows/s")
    print(f"ratio import/COPY: {import_rate / copy_rate:.3f} (target 0.3)")
    print("during the import (the relay runs in the customer service):")
    print("\n".join(meter.lines()))
    print("a chunk's phone check over the imported files (1,000 hashes):")
    print("\n".join(f"  {line[:200]}" for line in plan))


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
            "EXPLAIN (ANALYZE, BUFFERS) " + file_phones.FILES_WITH_PHONES, hashes
        )
    return [r[0] for r in rows]


def _profiler(stack: LocalStack, output: str, service: str) -> subprocess.Popen[bytes]:
    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("--profile needs py-spy on PATH")
    pid = stack.pids()[service]
    # An .svg is a flame graph; any other name gets the collapsed stacks, one per line.
    form = "flamegraph" if output.endswith(".svg") else "raw"
    command = [spy, "record", "--subprocesses", "--pid", str(pid), "--rate", "50"]
    return subprocess.Popen([*command, "--output", output, "--format", form])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", help="write a py-spy profile of the import here")
    parser.add_argument(
        "--profile-service", default="customer", help="the service --profile samples"
    )
    args = parser.parse_args()
    with temp_stack("crm-bench-imports-") as stack:
        log(f"starting the stack in {stack.data_dir} …")
        stack.start()
        asyncio.run(run(stack, args))
    if args.profile:
        log(f"profile: {Path(args.profile).resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
