"""An imported file's COPY tuple, encoded in the row-check processes (imports/copy_rows.py), is
the file asyncpg's own encoding of its record writes: the same rows copied both ways into two
copies of the ``customer`` table read back equal, column by column, NULLs, empty arrays, lunar
birthdays, JSON and several phones included."""

import io
from datetime import date

import asyncpg
import pytest

from crm_libs.db import asyncpg_dsn
from customer_service.imports import copy_rows, customer_checks, fingerprint_trail_rows
from customer_service.imports.customer_rows import read_customer_row
from customer_service.imports.sheets import open_sheet
from services.customer.tests.imports.store_context import store_context

CONTEXT = store_context({"李娜": "staff-1"})

SHEET = "\n".join(
    [
        "姓名,性别,手机,电话,生日,历法,结婚纪念日,邮箱,省,市,详细地址,来源,年龄,民族,身份证号,服务代表",
        "张秀英,女,138 1234 5678,010-6552 9988,1962-03-08,农历,1985-10-01,zhang@example.cn,"
        "北京市,北京市,朝阳区建国路 88 号,转介绍,,汉族,11010519491231002X,李娜",
        "王芳,,13912345678,,,,,,,,,,45,,,",
        "李雷\\,男,,,1990-1-2,公历,,,,,,,,,,",
        # An unusual name: quotes, emoji, a character outside the basic plane.
        '"O""Brien 𠀀 😀",其他,+86 137 0000 1111,,,,,,,,,,,,,',
    ]
).encode()


def _files() -> list[customer_checks.NewFile]:
    parsed = open_sheet(io.BytesIO(SHEET), kind="customers")
    files = []
    for row in parsed.rows:
        candidate = read_customer_row(row, parsed.columns, today=date.today())
        assert not isinstance(candidate, list), candidate
        owner = "staff-1" if candidate.owner else None
        file = customer_checks.customer_of(
            candidate, context=CONTEXT, owner_staff_id=owner, referrer_id=None
        )
        assert not isinstance(file, list), file
        files.append(file)
    return files


@pytest.mark.asyncio
async def test_a_files_copy_tuple_writes_what_its_record_writes(database_url: str) -> None:
    files = _files()
    assert len(files) == 4
    # What the rows cover: both calendars, JSON, two phones, an ID number, NULLs, empty arrays.
    assert {f.birthday_calendar for f in files} == {"solar", "lunar"}
    assert any(f.address for f in files) and any(f.id_number_encrypted for f in files)
    assert any(len(f.phone_hashes) == 2 for f in files)
    assert any(not f.phone_hashes for f in files)
    assert any(f.approximate_age is not None for f in files)
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        async with conn.transaction():
            for table in ("by_record", "by_tuple"):
                # A copy of the table's columns and types, without its keys to other tables.
                await conn.execute(
                    f"CREATE TEMP TABLE {table} (LIKE customer INCLUDING DEFAULTS) ON COMMIT DROP"
                )
            await conn.copy_records_to_table(
                "by_record",
                records=[customer_checks.record_of(f) for f in files],
                columns=customer_checks.COLUMNS,
            )
            rows = [customer_checks.sealed(f, timezone=CONTEXT.timezone).row for f in files]
            await conn.copy_to_table(
                "by_tuple",
                source=copy_rows.once(copy_rows.copy_data(rows)),
                columns=customer_checks.COLUMNS,
                format="binary",
            )
            columns = ", ".join(customer_checks.COLUMNS)
            by_record = await conn.fetch(f"SELECT {columns} FROM by_record ORDER BY id")  # noqa: S608
            by_tuple = await conn.fetch(f"SELECT {columns} FROM by_tuple ORDER BY id")  # noqa: S608
    finally:
        await conn.close()
    assert [dict(r) for r in by_tuple] == [dict(r) for r in by_record]
    names = {r["name"] for r in by_tuple}
    assert {"李雷\\", 'O"Brien 𠀀 😀'} <= names
    assert any(r["phone_hashes"] == [] for r in by_tuple)


def test_an_encoded_tuple_reads_back_field_by_field() -> None:
    row = copy_rows.RowFormat(
        [copy_rows.text, copy_rows.integer, copy_rows.day, copy_rows.jsonb, copy_rows.text_array]
    )(["王芳", None, date(2000, 1, 2), '{"a": 1}', ["x", "yz"]])
    fields = copy_rows.fields_of(row)
    assert fields[0] == "王芳".encode() and fields[1] is None
    assert fields[2] == (1).to_bytes(4, "big")  # a day after PostgreSQL's epoch
    assert fields[3] == b'\x01{"a": 1}'
    assert fields[4] is not None and fields[4].endswith(b"\x00\x00\x00\x01x\x00\x00\x00\x02yz")


@pytest.mark.asyncio
async def test_fingerprint_and_trail_rows_write_what_their_records_write(database_url: str) -> None:
    """A chunk's fingerprints and ownership entries, shared fields as one prefix and each
    row's own as its tail, read back as the same rows copied as records."""
    rows = [("fp-1", "file-1", "staff-1"), ("指纹-2", "file-2", "员工-2")]
    shared = {"store_id": "store-1", "kind": "customers", "job_id": "job-1"}
    fingerprints = fingerprint_trail_rows.fingerprint_data(
        [fingerprint_trail_rows.fingerprint_tail(fp, file) for fp, file, _ in rows], **shared
    )
    trail_shared = {"store_id": "store-1", "kind": "registered", "reason": "by import job-1"}
    trail = fingerprint_trail_rows.trail_data(
        [fingerprint_trail_rows.trail_tail(file, owner) for _, file, owner in rows],
        **trail_shared,
        by="admin",
        change_of_hands=False,
    )
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        async with conn.transaction():
            for table in ("import_fingerprint", "ownership_change"):
                await conn.execute(
                    f"CREATE TEMP TABLE tuple_{table} (LIKE {table} INCLUDING DEFAULTS) "
                    "ON COMMIT DROP"
                )
            for table, columns, data in (
                ("import_fingerprint", fingerprint_trail_rows.FINGERPRINT_COLUMNS, fingerprints),
                ("ownership_change", fingerprint_trail_rows.TRAIL_COLUMNS, trail),
                ("import_fingerprint", fingerprint_trail_rows.FINGERPRINT_COLUMNS, b""),
            ):
                if not data:  # no rows: an empty COPY
                    data = fingerprint_trail_rows.fingerprint_data([], **shared)
                await conn.copy_to_table(
                    f"tuple_{table}",
                    source=copy_rows.once(data),
                    columns=columns,
                    format="binary",
                )
            got_fingerprints = await conn.fetch(
                "SELECT store_id, kind, job_id, fingerprint, record_id "
                "FROM tuple_import_fingerprint ORDER BY record_id"
            )
            got_trail = await conn.fetch(
                "SELECT customer_id, store_id, to_staff_id, kind, reason, by, change_of_hands "
                "FROM tuple_ownership_change ORDER BY customer_id"
            )
    finally:
        await conn.close()
    assert [tuple(r) for r in got_fingerprints] == [
        ("store-1", "customers", "job-1", fp, file) for fp, file, _ in rows
    ]
    assert [tuple(r) for r in got_trail] == [
        (file, "store-1", owner, "registered", "by import job-1", "admin", False)
        for _, file, owner in rows
    ]
    assert copy_rows.fields_of(copy_rows.RowFormat([copy_rows.boolean])([True]))[0] == b"\x01"
