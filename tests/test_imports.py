"""Spreadsheet imports through the gateway (real PostgreSQL, broker and services): a job with
progress, row errors reported while the other rows go in, re-imports creating nothing, whole
files refused with nothing written, purchase history reaching scoring, a crashed job resumed,
and the operators' command line."""

import asyncio
import csv
import io
import os
import random
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import xlsxwriter
from aiokafka import AIOKafkaConsumer

from crm_devstack.fixtures import eventually, migrated_database
from crm_devstack.stack import LocalStack
from crm_libs import text_lists
from crm_libs.db import asyncpg_dsn
from crm_libs.events.envelope import EventEnvelope, Topics
from customer_service.imports import customer_import, file_phones, jobs, worker
from tests.builders import (
    create_customer,
    create_product,
    create_staff,
    create_store,
    score_with_purchases,
)


def mobile() -> str:
    return f"139{random.randrange(10**8):08d}"


def mobiles(count: int) -> list[str]:
    """Distinct numbers: 2,500 independent draws repeat one about once in 30 files,
    and a repeat in one file is (rightly) an error row."""
    return [f"139{n:08d}" for n in random.sample(range(10**8), count)]


def xlsx(rows: list[list[Any]]) -> bytes:
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    sheet = book.add_worksheet("顾客档案")
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            sheet.write(r, c, value)
    book.close()
    return out.getvalue()


def csv_bytes(rows: list[list[Any]]) -> bytes:
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    return text.getvalue().encode()


async def upload(
    api: httpx.AsyncClient, content: bytes, *, store_id: str, kind: str = "customers", name: str
) -> httpx.Response:
    return await api.post(
        "/imports",
        data={"store_id": store_id, "kind": kind},
        files={"file": (name, content, "application/octet-stream")},
    )


async def finished(api: httpx.AsyncClient, job_id: str, timeout: float = 60) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        job = (await api.get(f"/imports/{job_id}")).json()
        return job if job["status"] in ("done", "failed") else None

    return await eventually(probe, timeout=timeout, interval=0.1)


async def imported(
    api: httpx.AsyncClient, content: bytes, *, store_id: str, kind: str = "customers", name: str
) -> dict[str, Any]:
    response = await upload(api, content, store_id=store_id, kind=kind, name=name)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] == "queued" and job["done"] == 0 and job["errors"] == []
    done = await finished(api, job["id"])
    assert done["status"] == "done", done
    return done


async def files_of(api: httpx.AsyncClient, store_id: str) -> list[dict[str, Any]]:
    response = await api.get("/customers", params={"store_id": store_id, "limit": 200})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def registered_events(stack: LocalStack, ids: set[str]) -> dict[str, EventEnvelope]:
    consumer = AIOKafkaConsumer(
        Topics.CUSTOMERS,
        bootstrap_servers=stack.broker.bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: dict[str, EventEnvelope] = {}
    try:

        async def all_seen() -> bool:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                for record in batch:
                    if record.key and record.key.decode() in ids:
                        event = EventEnvelope.model_validate_json(record.value)
                        found.setdefault(event.customer_id, event)
            return set(found) == ids

        await eventually(all_seen, timeout=60)
    finally:
        await consumer.stop()
    return found


async def test_xlsx_with_chinese_headers_imported_with_row_errors_and_again_creates_nothing(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    store = await create_store(api)
    staff = await create_staff(api, store_id=store["id"])  # 李娜
    phones = [mobile() for _ in range(3)]
    sheet = xlsx(
        [
            ["《顾客关系管理表》"],
            ["姓名", "性别", "手机", "农历生日", "地址", "来源", "推荐人", "服务代表"],
            ["张秀英", "女", phones[0], "1956-08-15", "杭州市西湖区文三路1号", "讲座", "", "李娜"],
            ["王建国", "男", phones[1], "1950-02-01", "", "", phones[0], ""],
            ["刘芳", "女", "12345", "", "", "", "", ""],
            ["陈静", "女", phones[2], "", "", "公园", "张秀英", ""],
        ]
    )
    job = await imported(api, sheet, store_id=store["id"], name="顾客.xlsx")
    assert (job["total"], job["done"], job["created"], job["error_count"]) == (4, 4, 3, 1)
    assert job["kind"] == "customers" and job["started_at"] and job["finished_at"]
    assert [(e["row"], e["field"]) for e in job["errors"]] == [(5, "phone")]
    assert job["errors"][0]["message"]

    files = {f["name"]: f for f in await files_of(api, store["id"])}
    assert set(files) == {"张秀英", "王建国", "陈静"}
    zhang = (await api.get(f"/customers/{files['张秀英']['id']}")).json()
    assert zhang["phone"] == f"+86{phones[0]}"
    assert zhang["birthday_calendar"] == "lunar" and zhang["birthday"] == "1956-08-15"
    assert zhang["source"]["channel"] == "lecture"
    assert zhang["owner_staff_id"] == staff["id"]
    assert zhang["address"]["street"] == "杭州市西湖区文三路1号"
    wang = (await api.get(f"/customers/{files['王建国']['id']}")).json()
    assert wang["source"]["channel"] == "import"  # the sheet named none
    assert wang["referrer_id"] == zhang["id"]  # by phone, a row of the same sheet
    assert files["陈静"]["referrer_id"] == zhang["id"]  # by name
    # Found by a phone's last four digits, as a file opened at the counter is.
    found = await api.get("/customers", params={"store_id": store["id"], "q": phones[2][-4:]})
    assert [f["name"] for f in found.json()["items"]] == ["陈静"]

    events = await registered_events(stack, {f["id"] for f in files.values()})
    assert {e.type for e in events.values()} == {"customer.registered"}
    assert events[zhang["id"]].payload["file"]["owner_staff_id"] == staff["id"]

    report = await api.get(f"/imports/{job['id']}/errors")
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(report.content.decode("utf-8-sig"))))
    assert lines[0] == ["row", "field", "message"]
    assert [line[:2] for line in lines[1:]] == [["5", "phone"]]

    again = await imported(api, sheet, store_id=store["id"], name="顾客.xlsx")
    assert (again["created"], again["skipped"], again["error_count"]) == (0, 3, 1)
    assert len(await files_of(api, store["id"])) == 3


async def test_lunar_birthdays_in_a_leap_month_are_imported_as_the_api_writes_them(
    api: httpx.AsyncClient,
) -> None:
    """A leap month (闰月) is no solar date: written 1944-L04-04 or 2023-闰02-15 it is the lunar
    birthday the API takes; in a row that says solar, or a leap month its year lacks, it is the
    row's error, and the other rows go in."""
    store = await create_store(api)
    phones = [mobile() for _ in range(4)]
    sheet = xlsx(
        [
            ["姓名", "手机", "生日", "历法"],
            ["赵德芳", phones[0], "1944-L04-04", ""],
            ["钱惟演", phones[1], "2023-闰02-15", "农历"],
            ["孙光宪", phones[2], "1944-L04-04", "公历"],
            ["李重进", phones[3], "2022-L04-01", "农历"],
            ["周世宗", mobile(), "1850-L04-04", ""],
        ]
    )
    job = await imported(api, sheet, store_id=store["id"], name="闰月.xlsx")
    assert (job["created"], job["error_count"]) == (2, 3), job
    assert [(e["row"], e["field"]) for e in job["errors"]] == [
        (4, "birthday"),
        (5, "birthday"),
        (6, "birthday"),
    ]
    assert "leap" in job["errors"][0]["message"]
    files = {f["name"]: f for f in await files_of(api, store["id"])}
    assert {(n, f["birthday"], f["birthday_calendar"]) for n, f in files.items()} == {
        ("赵德芳", "1944-L04-04", "lunar"),
        ("钱惟演", "2023-L02-15", "lunar"),
    }


def row_check_processes(stack: LocalStack) -> tuple[set[int], list[int]]:
    """The customer service's fork server for the processes checking an import's rows
    (imports/row_checks.py; none before its first long import), and those processes: its
    forks."""
    processes: dict[int, tuple[int, bytes]] = {}
    for entry in Path("/proc").iterdir():
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            processes[int(entry.name)] = (parent, (entry / "cmdline").read_bytes())
        except (OSError, ValueError, IndexError):
            continue
    service = stack.pids()["customer"]
    servers = {
        pid
        for pid, (parent, command) in processes.items()
        if parent == service and b"multiprocessing.forkserver" in command
    }
    return servers, [pid for pid, (parent, _) in processes.items() if parent in servers]


async def test_a_chunk_sees_the_files_of_the_chunk_before_it(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    """The next chunks are checked (by processes of their own once they are up: the sheet is
    longer than a chunk) while one is written: still, a row repeating one of the chunk before is
    skipped (not reported as a taken phone), and a referrer named by phone is found among the
    files that chunk wrote. The processes stop once no import is left (their fork server stays
    for the next import)."""
    store = await create_store(api)
    first = random.randrange(10**7, 9 * 10**7)
    phones = [f"139{first + i:08d}" for i in range(worker.CHUNK_ROWS + 2)]
    rows = [["姓名", "手机", "推荐人"], ["张秀英", phones[0], ""]]
    rows += [["王芳", phone, ""] for phone in phones[1 : worker.CHUNK_ROWS]]
    # The next chunk: the first row again, then a row referred by it.
    rows += [["张秀英", phones[0], ""], ["陈静", phones[-1], phones[0]]]
    response = await upload(api, csv_bytes(rows), store_id=store["id"], name="big.csv")
    assert response.status_code == 202, response.text

    async def started() -> set[int] | None:
        return row_check_processes(stack)[0] or None

    assert len(await eventually(started, timeout=30, interval=0.05)) == 1
    job = await finished(api, response.json()["id"])
    assert job["status"] == "done", job
    assert (job["created"], job["skipped"], job["error_count"]) == (worker.CHUNK_ROWS + 1, 1, 0)

    async def one(phone: str) -> dict[str, Any]:
        found = await api.get("/customers", params={"store_id": store["id"], "q": phone})
        [item] = found.json()["items"]
        return dict(item)

    assert (await one(phones[-1]))["referrer_id"] == (await one(phones[0]))["id"]

    async def stopped() -> bool:
        return not row_check_processes(stack)[1]

    await eventually(stopped, timeout=30)


async def test_a_chunks_phone_check_looks_its_hashes_up_in_the_index(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    """The check finds the store's phones only (not another store's file with the same phone),
    through the phone hashes' GIN index, not by comparing every file of the store with the
    chunk's thousand hashes; the index's pending list is merged after each chunk."""
    store, other = await create_store(api), await create_store(api)
    phones = mobiles(300)
    await imported(
        api,
        csv_bytes([["姓名", "手机"], *[["王芳", p] for p in phones]]),
        store_id=store["id"],
        name="a.csv",
    )
    await create_customer(api, store_id=other["id"], phone=phones[0])
    elsewhere = mobile()
    await create_customer(api, store_id=other["id"], phone=elsewhere)
    conn = await asyncpg.connect(asyncpg_dsn(stack.database_url("customer")))
    try:
        hashes = await conn.fetchval(
            "SELECT array_agg(h) FROM customer, unnest(phone_hashes) h WHERE store_id = $1",
            store["id"],
        )
        extra = await conn.fetchval(
            "SELECT phone_hashes[1] FROM customer WHERE store_id = $1 AND NOT phone_hashes "
            "&& $2::text[]",
            other["id"],
            hashes,
        )
        async with conn.transaction():
            # As a chunk's first statement sets them (customer_import.write_chunk).
            await conn.execute(f"SELECT {file_phones.SEQSCANS_OFF}")
            taken = await customer_import.phones_taken(
                conn, store_id=store["id"], digests=[*hashes, extra]
            )
            plan = "\n".join(
                r[0]
                for r in await conn.fetch(
                    "EXPLAIN " + file_phones.FILES_WITH_PHONES, text_lists.joined([*hashes, extra])
                )
            )
        assert taken == set(hashes)
        assert "ix_customer_store_phone_hashes" in plan, plan
    finally:
        await conn.close()


async def test_a_phone_already_on_file_is_reported_not_duplicated(api: httpx.AsyncClient) -> None:
    store = await create_store(api)
    phone = mobile()
    await create_customer(api, store_id=store["id"], phone=phone)
    sheet = csv_bytes([["姓名", "手机"], ["王芳芳", phone], ["赵敏", mobile()]])
    job = await imported(api, sheet, store_id=store["id"], name="a.csv")
    assert (job["created"], job["error_count"]) == (1, 1)
    assert job["errors"][0]["row"] == 2 and job["errors"][0]["field"] == "phone"
    assert sorted(f["name"] for f in await files_of(api, store["id"])) == ["王芳", "赵敏"]


async def test_an_imported_files_owner_is_on_its_ownership_trail_as_at_registration(
    api: httpx.AsyncClient,
) -> None:
    """A file a sheet gives an owner starts its ownership trail as a registration's does
    (``registered``, nobody before, no change of hands), by the account that imported it and
    saying which import; a file the sheet gives nobody has none, as a registration naming no
    owner; importing the sheet again adds nothing."""
    store = await create_store(api)
    staff = await create_staff(api, store_id=store["id"])  # 李娜
    at_counter = await create_customer(
        api, store_id=store["id"], phone=mobile(), owner_staff_id=staff["id"]
    )
    registered = (await api.get(f"/customers/{at_counter['id']}/ownership")).json()["history"]
    sheet = csv_bytes(
        [["姓名", "手机", "服务代表"], ["张秀英", mobile(), "李娜"], ["赵敏", mobile(), ""]]
    )
    job = await imported(api, sheet, store_id=store["id"], name="owners.csv")
    assert job["created"] == 2
    files = {f["name"]: f["id"] for f in await files_of(api, store["id"])}

    owned = (await api.get(f"/customers/{files['张秀英']}/ownership")).json()
    assert owned["owner_staff_id"] == staff["id"]
    [change] = owned["history"]
    assert (change["kind"], change["from_staff_id"], change["to_staff_id"]) == (
        "registered",
        None,
        staff["id"],
    )
    assert (change["change_of_hands"], change["manager_approval"]) == (False, False)
    assert change["by"] == registered[0]["by"]  # the account that imported the sheet
    assert "import" in change["reason"] and job["id"] in change["reason"]
    unowned = (await api.get(f"/customers/{files['赵敏']}/ownership")).json()
    assert (unowned["owner_staff_id"], unowned["history"]) == (None, [])

    again = await imported(api, sheet, store_id=store["id"], name="owners.csv")
    assert again["skipped"] == 2
    assert len((await api.get(f"/customers/{files['张秀英']}/ownership")).json()["history"]) == 1


async def test_a_row_with_two_invalid_phones_reports_both_and_the_other_rows_go_in(
    api: httpx.AsyncClient,
) -> None:
    """Each invalid phone of a row is named (the registration's checks answer such a row with
    one problem listing both), not the whole import stopped on it."""
    store = await create_store(api)
    rows = [["姓名", "手机", "电话"], ["王芳", "12345", "23456"], ["赵敏", mobile(), ""]]
    sheet = csv_bytes(rows)
    job = await imported(api, sheet, store_id=store["id"], name="two-phones.csv")
    assert (job["created"], job["error_count"]) == (1, 2)
    assert [(e["row"], e["field"]) for e in job["errors"]] == [(2, "phone"), (2, "phone")]
    assert all("too short" in e["message"] for e in job["errors"])
    assert [f["name"] for f in await files_of(api, store["id"])] == ["赵敏"]


async def test_whole_files_refused_with_nothing_written(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    store = await create_store(api)
    conn = await asyncpg.connect(asyncpg_dsn(stack.database_url("customer")))
    try:
        before = await conn.fetchval("SELECT count(*) FROM import_job")
        cases = [
            (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, 415, "PNG"),
            (b"", 422, "empty"),
            (b"a" * (50 * 1024 * 1024 + 1), 413, "50 MB"),
            (csv_bytes([["colour", "size"], ["red", "L"]]), 422, "name"),
        ]
        for content, status, words in cases:
            response = await upload(api, content, store_id=store["id"], name="x.csv")
            assert response.status_code == status, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
            assert words in response.json()["detail"]
        assert await conn.fetchval("SELECT count(*) FROM import_job") == before
        assert await conn.fetchval("SELECT count(*) FROM import_upload_chunk") == 0
    finally:
        await conn.close()
    assert await files_of(api, store["id"]) == []


async def test_purchase_history_reaches_scoring_in_date_order_and_once(
    api: httpx.AsyncClient,
) -> None:
    store = await create_store(api)
    product = await create_product(api, unit_price="100.00", days_per_unit=30)
    phone = mobile()
    customer = await create_customer(api, store_id=store["id"], phone=phone)
    today = date.today()
    days = [(today - timedelta(days=d)).isoformat() for d in (10, 40, 70)]
    sheet = csv_bytes(
        [
            ["电话", "日期", "商品编码", "数量", "金额"],
            [phone, days[0], product["sku"], 1, "98.00"],
            [phone, days[2], product["sku"], 2, "200.00"],
            [phone, days[1], "NO-SUCH-SKU", 1, "10.00"],
            [mobile(), days[1], product["sku"], 1, "100.00"],
            [phone, days[1], product["sku"], 1, "100.00"],
        ]
    )
    job = await imported(api, sheet, store_id=store["id"], kind="purchases", name="till.csv")
    assert (job["total"], job["created"], job["error_count"]) == (5, 3, 2)
    assert {(e["row"], e["field"]) for e in job["errors"]} == {(4, "sku"), (5, "phone")}
    purchases = (await api.get(f"/customers/{customer['id']}/purchases")).json()["items"]
    assert sorted(p["total"] for p in purchases) == ["100.00", "200.00", "98.00"]
    score = await score_with_purchases(api, customer["id"], count=3)
    assert score["stats"]["purchase_count"] == 3
    file = (await api.get(f"/customers/{customer['id']}")).json()
    assert file["prospect"]["stage"] == "bought"

    again = await imported(api, sheet, store_id=store["id"], kind="purchases", name="till.csv")
    assert (again["created"], again["skipped"]) == (0, 3)
    assert len((await api.get(f"/customers/{customer['id']}/purchases")).json()["items"]) == 3


async def test_a_job_left_running_by_a_crashed_worker_resumes_after_its_last_chunk(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    """A worker died after committing two rows: the job's lease ran out, another worker claims
    it and writes the rest only."""
    store = await create_store(api)
    names = ["甲一", "乙二", "丙三", "丁四"]
    sheet = csv_bytes([["姓名"], *[[n] for n in names]])
    conn = await asyncpg.connect(asyncpg_dsn(stack.database_url("customer")))
    try:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO import_job (id, store_id, kind, size, created_by, status, total, "
                "done, created, lease_owner, lease_until, started_at) VALUES ($1, $2, "
                "'customers', $3, 'test', 'running', 4, 2, 2, 'crashed-worker', "
                "now() - interval '1 second', now() - interval '1 minute')",
                f"crash{store['id']}",
                store["id"],
                len(sheet),
            )
            await conn.execute(
                "INSERT INTO import_upload_chunk (job_id, seq, data) VALUES ($1, 0, $2)",
                f"crash{store['id']}",
                sheet,
            )
    finally:
        await conn.close()
    job = await finished(api, f"crash{store['id']}")
    assert (job["status"], job["total"], job["done"], job["created"]) == ("done", 4, 4, 4)
    assert sorted(f["name"] for f in await files_of(api, store["id"])) == ["丁四", "丙三"]


async def test_two_workers_never_claim_one_job(stack: LocalStack) -> None:
    url = migrated_database(stack, "customer_service")
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute(
            "INSERT INTO store (id, code, name, timezone) "
            "VALUES ('s1', 'S1', 'Store', 'Asia/Shanghai')"
        )
        await conn.execute(
            "INSERT INTO import_job (id, store_id, kind, size, created_by) "
            "VALUES ('j1', 's1', 'customers', 1, 'test')"
        )
        others = [await asyncpg.connect(asyncpg_dsn(url)) for _ in range(4)]
        try:
            claims = await asyncio.gather(
                *(jobs.claim(c, worker=f"w{i}") for i, c in enumerate(others))
            )
            assert [c.id for c in claims if c is not None] == ["j1"]
            # A live lease is not taken over; an expired one is.
            assert await jobs.claim(others[0], worker="late") is None
            await conn.execute("UPDATE import_job SET lease_until = now() - interval '1 second'")
            resumed = await jobs.claim(others[0], worker="late")
            assert resumed is not None and resumed.lease_owner == "late"
        finally:
            for c in others:
                await c.close()
    finally:
        await conn.close()


@pytest.mark.timeout(240)
async def test_a_long_sheet_is_counted_beside_its_first_chunks_and_finishes_with_its_total(
    api: httpx.AsyncClient,
) -> None:
    """A sheet past the early-start size is counted by a row-check process while the others
    check its first chunks: the job still ends with the whole count (blank and totals rows left
    out) and every row done."""
    store = await create_store(api)
    base = random.randrange(10**7)
    rows: list[list[Any]] = [["顾客关系管理表"], ["姓名", "手机"]]
    rows += [[f"顾客{i}", f"136{(base + i) % 10**8:08d}"] for i in range(12_000)]
    rows += [[], ["坏号", "999"], ["合计", ""]]
    content = csv_bytes(rows)
    assert len(content) > worker.EARLY_START_BYTES
    job = await imported(api, content, store_id=store["id"], name="long.csv")
    assert (job["total"], job["done"], job["created"], job["error_count"]) == (
        12_001,
        12_001,
        12_000,
        1,
    )
    assert job["errors"][0]["row"] == 12_004


@pytest.mark.timeout(180)
async def test_the_command_line_imports_with_progress_and_saves_the_report(
    api: httpx.AsyncClient, stack: LocalStack, admin_token: str, tmp_path: Path
) -> None:
    store = await create_store(api)
    rows = [["姓名", "手机"]] + [[f"顾客{i}", phone] for i, phone in enumerate(mobiles(2500))]
    rows.append(["坏号", "999"])
    path = tmp_path / "customers.csv"
    path.write_bytes(csv_bytes(rows))
    command = [
        str(Path(sys.executable).parent / "crm-import"),  # the console script uv installs
        "--gateway",
        stack.url("gateway"),
        "--token",
        admin_token,
        "--store",
        store["id"],
        "--interval",
        "0.1",
        str(path),
    ]
    result = await asyncio.to_thread(
        subprocess.run,
        command,
        capture_output=True,
        text=True,
        timeout=150,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2501/2501" in result.stdout
    assert "2500 written" in result.stdout, result.stdout
    report = tmp_path / "customers.errors.csv"
    assert f"Error report: {report}" in result.stdout.replace("\n", "")
    assert "2502,phone" in report.read_text(encoding="utf-8-sig")
