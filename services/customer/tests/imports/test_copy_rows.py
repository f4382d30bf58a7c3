"""An imported file's COPY tuple, encoded in the row-check processes (imports/copy_rows.py), is
the file asyncpg's own encoding of its record writes: the same rows copied both ways into two
copies of the ``customer`` table read back equal, column by column, NULLs, empty arrays, lunar
birthdays, JSON and several phones included."""

import io
from datetime import date

import asyncpg
import pytest

from crm_libs.db import asyncpg_dsn
from customer_service.imports import copy_rows, customer_checks
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
