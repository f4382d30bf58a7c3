"""The processes that check a long sheet's rows (imports/row_checks.py): started on first use
only, giving what the checks give in the service's own process, ignoring Ctrl-C, and gone when
closed or when the service that started them dies; until they are up, a sheet's chunks are
checked in the service, one at a time."""

import asyncio
import io
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, date, datetime
from typing import Any

import orjson
import pytest

from crm_devstack.fixtures import eventually
from crm_devstack.processes import stat_fields
from customer_service.imports import copy_rows, customer_checks, row_checks
from customer_service.imports.row_checks import RowChecks
from customer_service.imports.sheets import open_sheet
from customer_service.imports.worker import Runner
from services.customer.tests.imports.store_context import store_context

CONTEXT = store_context({"李娜": "staff-1"})
SHEET = "\n".join(
    [
        "姓名,性别,手机,农历生日,推荐人,服务代表",
        "张秀英,女,138 1234 5678,1956-08-15,,李娜",
        "王建国,男,+86-139-1234-5678,1950-02-01,13812345678,",
        "刘芳,女,12345,,,",
        "陈静,女,010-12345678,,张秀英,王五",
    ]
).encode()


def _alive(pid: int) -> bool:
    # stat_fields takes any OSError as gone: a process reaped between the open of its stat
    # file and the read raises ProcessLookupError there, not FileNotFoundError.
    stat = stat_fields(pid)
    return stat is not None and stat[0] != "Z"


def _parent(pid: int) -> int:
    stat = stat_fields(pid)
    assert stat is not None, f"process {pid} is gone"
    return int(stat[1])


def _gone(pids: list[int], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(_alive(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


def _ignoring_sigint(pids: list[int], timeout: float = 20.0) -> bool:
    """Whether each process ignores SIGINT (once it has started: its start-up sets that)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        masks = []
        for pid in pids:
            with open(f"/proc/{pid}/status") as status:
                line = next(x for x in status if x.startswith("SigIgn:"))
            masks.append(int(line.split()[1], 16))
        if all(mask & (1 << (signal.SIGINT - 1)) for mask in masks):
            return True
        time.sleep(0.1)
    return False


def _comparable(chunk: customer_checks.CheckedChunk) -> list[object]:
    """A chunk's outcome without what is drawn at random (ids, nonces, event times)."""
    random = ("id", "phones_encrypted")
    outcome: list[object] = [chunk.rows, chunk.candidates, chunk.errors]
    for row in chunk.checked:
        record = copy_rows.fields_of(row.sealed.row) if row.sealed else []
        kept = [v for c, v in zip(customer_checks.COLUMNS, record, strict=False) if c not in random]
        outcome.append((row.row, row.fingerprint, row.referrer, row.errors, row.name, kept))
    return outcome


# Which of the service's heavy modules a process has loaded (evaluated there).
_LOADED = (
    "[m for m in ('fastapi', 'starlette', 'sqlalchemy', 'sqlmodel', 'asyncpg', 'aiokafka', "
    "'pydantic') if m in __import__('sys').modules]"
)

_FROZEN = "__import__('gc').get_freeze_count()"


@pytest.mark.timeout(120)
async def test_rows_checked_in_the_processes_come_back_as_checked_here() -> None:
    parsed = open_sheet(io.BytesIO(SHEET), kind="customers")
    raw = customer_checks.raw_rows(parsed.rows, 100)
    today = date.today()
    here = customer_checks.check_rows(raw, columns=parsed.columns, today=today, context=CONTEXT)
    checks = RowChecks(2)
    assert not checks.started and checks.pids() == []  # nothing runs before it is needed
    try:
        there = await checks.run(
            customer_checks.check_rows, raw, columns=parsed.columns, today=today, context=CONTEXT
        )
        assert checks.started and len(checks.pids()) == 2
        assert _comparable(there) == _comparable(here)
        # What checking needs and no more: the processes start without loading the web
        # framework, the database layer or pydantic (the write schema is loaded for a row the
        # plain reading does not take; none here), a second or so of each one's start.
        assert await checks.run(eval, _LOADED) == []
        # What the start loaded (with the collector paused) is frozen out of its walks.
        assert await checks.run(eval, _FROZEN) > 100_000
        assert [e.row for e in there.errors] + [r.row for r in there.checked if r.errors] == [4, 5]
        # Sealed there, read here: the phone list opens with the service's own cipher.
        zhang = next(r for r in there.checked if r.name == "张秀英")
        assert zhang.sealed is not None
        phones = copy_rows.fields_of(zhang.sealed.row)[
            customer_checks.COLUMNS.index("phones_encrypted")
        ]
        assert phones is not None
        assert "+8613812345678" in CONTEXT.cipher.decrypt(phones.decode())
        # A row naming a referrer keeps its file, to be sealed again once the referrer is found.
        assert [r.name for r in there.checked if r.file is not None] == ["王建国"]
        pids = checks.pids()
        assert _ignoring_sigint(pids)
        # Behind the service and its database, whatever the service's own priority (19 is
        # the lowest there is).
        behind = min(os.getpriority(os.PRIO_PROCESS, 0) + row_checks.NICENESS, 19)
        assert [os.getpriority(os.PRIO_PROCESS, pid) for pid in pids] == [behind] * len(pids)
        for pid in pids:
            os.kill(pid, signal.SIGINT)  # Ctrl-C at a terminal reaches the whole group
        again = await checks.run(
            customer_checks.fingerprints_of, raw, columns=parsed.columns, today=today
        )
        assert again == [r.fingerprint for r in here.checked] and checks.pids() == pids
    finally:
        checks.close()
    assert not checks.started and _gone(pids)


@pytest.mark.timeout(120)
async def test_a_sheet_the_plain_reading_takes_is_checked_without_the_write_schema() -> None:
    """The write schema (pydantic's models, a third of a process's start) is loaded only for a
    row the plain reading does not take: not for a sheet's usual rows, a lunar birthday in a
    leap month (1944-L04-04, read as its text) and an email among them, nor for their errors."""
    sheet = "\n".join(
        [
            "姓名,性别,手机,生日,历法,服务代表,邮箱",
            "张秀英,女,138 1234 5678,1956-08-15,农历,李娜,Xiu.Zhang@Example.CN",
            "孟琴静,女,13240749358,1944-L04-04,农历,,",
            "叶玲艳,女,13699913832,1974-L04-31,农历,,",
            "刘芳,女,12345,,,,",
        ]
    ).encode()
    parsed = open_sheet(io.BytesIO(sheet), kind="customers")
    raw = customer_checks.raw_rows(parsed.rows, 100)
    checks = RowChecks(1)  # one process: the one that checks is the one asked
    try:
        chunk = await checks.run(
            customer_checks.check_rows,
            raw,
            columns=parsed.columns,
            today=date.today(),
            context=CONTEXT,
        )
        assert [r.row for r in chunk.checked if r.sealed] == [2, 3]
        assert [(r.row, [e.field for e in r.errors]) for r in chunk.checked if r.errors] == [
            (4, ["birthday"]),
            (5, ["phone"]),
        ]
        assert await checks.run(eval, _LOADED) == []
    finally:
        checks.close()


_SERVICE = """
import asyncio, os, sys, time
from customer_service.imports.row_checks import RowChecks

async def main():
    checks = RowChecks(2)
    await checks.run(os.getpid)
    print(" ".join(map(str, checks.pids())), flush=True)
    time.sleep(600)

asyncio.run(main())
"""


@pytest.mark.timeout(120)
def test_the_processes_die_with_the_service_that_started_them() -> None:
    service = subprocess.Popen([sys.executable, "-c", _SERVICE], stdout=subprocess.PIPE, text=True)
    try:
        assert service.stdout is not None
        pids = [int(p) for p in service.stdout.readline().split()]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
        # Forks of one fork server, which the service started.
        (server,) = {_parent(p) for p in pids}
        assert server != service.pid and _parent(server) == service.pid
        service.kill()  # no goodbye: SIGKILL
        service.wait(10)
        assert _gone([*pids, server])
    finally:
        if service.poll() is None:
            service.kill()
            service.wait(10)


def test_a_rows_registration_event_is_written_as_the_envelope_writes_it() -> None:
    """The outbox row's text is built without the envelope's model: read back as an
    ``EventEnvelope`` and written again it is the same text, byte for byte, with the payload a
    registration stages (customers/events.py)."""
    from crm_libs.events.envelope import EventEnvelope
    from customer_service.customers.events import CUSTOMER_REGISTERED

    parsed = open_sheet(io.BytesIO(SHEET), kind="customers")
    raw = customer_checks.raw_rows(parsed.rows, 100)
    chunk = customer_checks.check_rows(
        raw, columns=parsed.columns, today=date.today(), context=CONTEXT
    )
    sealed = [r.sealed for r in chunk.checked if r.sealed is not None]
    assert len(sealed) == 2
    for row in sealed:
        event = EventEnvelope.from_bytes(row.envelope.encode())
        assert event.to_bytes().decode() == row.envelope
        assert str(event.event_id) == row.event_id and event.type == CUSTOMER_REGISTERED
        assert event.event_id.version == 4 and event.event_id.variant == uuid.RFC_4122
        file_id = copy_rows.fields_of(row.row)[customer_checks.COLUMNS.index("id")]
        assert event.customer_id == (file_id or b"").decode()
        assert event.store_id == CONTEXT.store_id
        file = event.payload["file"]
        assert event.payload["timezone"] == file["timezone"] == "Asia/Shanghai"
        assert file["status"] == "active" and file["relations"] == []
    zhang = EventEnvelope.from_bytes(sealed[0].envelope.encode()).payload["file"]
    assert (zhang["birthday_calendar"], zhang["owner_staff_id"]) == ("lunar", "staff-1")
    # The time is written as pydantic writes it, whole seconds (no fraction) too.
    whole = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    stamp = EventEnvelope(type="t", store_id="s", customer_id="c", occurred_at=whole)
    assert orjson.dumps(whole, option=orjson.OPT_UTC_Z) == b'"2026-01-02T03:04:05Z"'
    assert b'"occurred_at":"2026-01-02T03:04:05Z"' in stamp.to_bytes()


def _where_and_when(pause: float) -> tuple[int, float, float]:
    began = time.monotonic()
    time.sleep(pause)
    return os.getpid(), began, time.monotonic()


@pytest.mark.timeout(120)
async def test_a_long_sheet_s_first_chunks_are_checked_here_while_the_processes_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The processes held back until the first chunks are checked: a fork server loaded by an
    # earlier test forks them in milliseconds.
    release = threading.Event()
    start_processes = row_checks._start_processes

    def held(*args: Any) -> None:
        release.wait(60)
        start_processes(*args)

    monkeypatch.setattr(row_checks, "_start_processes", held)
    checks = RowChecks(1)
    runner = Runner(
        app=None,  # type: ignore[arg-type]
        job=None,  # type: ignore[arg-type]
        worker="w",
        timezone="UTC",
        upload=None,  # type: ignore[arg-type]
        checks=checks,
    )
    checks.start()
    try:
        assert not checks.ready
        # Checked here (the service's pid), the second after the first: in threads side by
        # side they would share the interpreter lock and both finish late.
        first, second = await asyncio.gather(
            runner._off_loop(_where_and_when, 0.05), runner._off_loop(_where_and_when, 0.05)
        )
        assert first[0] == second[0] == os.getpid()
        assert second[1] >= first[2] or first[1] >= second[2]
        release.set()

        async def ready() -> bool:
            return checks.ready

        await eventually(ready, timeout=60)
        pid, _, _ = await runner._off_loop(_where_and_when, 0)
        assert pid in checks.pids()  # then in the processes
    finally:
        release.set()
        checks.close()


_CLOSED_AT_ONCE = """
import asyncio
from customer_service.imports.row_checks import RowChecks

async def main():
    checks = RowChecks(2)
    checks.start()  # the fork server is still loading
    pool = checks._pool
    checks.close()
    # Processes started by the time close() returned: none, had it not waited for the first
    # (and the pool not shut down yet: a shut-down pool's processes are None).
    print(len(pool._processes), flush=True)
    await asyncio.sleep(5)  # the processes, forked meanwhile, stop
    print(len(pool._processes or {}), flush=True)

asyncio.run(main())
"""


@pytest.mark.timeout(120)
def test_closing_before_the_processes_are_up_does_not_wait_for_them() -> None:
    """A job that ends while the fork server still loads (a sheet just over a chunk) stops the
    checks without holding up the service's event loop for the loading."""
    done = subprocess.run(
        [sys.executable, "-c", _CLOSED_AT_ONCE], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "0"]
