"""The import worker: runs queued import jobs in the background of the customer service.

Each service process runs one (see main.py). It claims the oldest unfinished job nobody holds
(imports/jobs.py), reads the upload back from the database (any replica may run a job another
received), and works through its rows a chunk at a time: reading and checking rows (pure Python)
off the event loop, then one transaction per chunk writing the rows, their events, their errors
and the job's progress together. A customer sheet longer than a chunk is checked in a pool of
processes (imports/row_checks.py), several chunks ahead of the one being written; what depends
on the rows written before (rows imported, referrers among their files) is settled once those
are committed. A job resumed after a crash skips the rows its committed progress counts.
"""

import asyncio
import contextlib
import functools
import itertools
import logging
import os
import socket
import tempfile
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import IO, Any, TypeVar
from zoneinfo import ZoneInfo

from fastapi import FastAPI

from crm_libs.db import driver_connection
from crm_libs.ids import new_id
from customer_service.imports import customer_checks, customer_import, jobs, purchase_import
from customer_service.imports.customer_checks import CheckedChunk, StoreContext
from customer_service.imports.jobs import Job, LeaseLost
from customer_service.imports.purchase_rows import PurchaseCandidate, read_purchase_row
from customer_service.imports.row_checks import RowChecks
from customer_service.imports.rows import RepeatedRows, RowError
from customer_service.imports.sheets import ImportRefused, SheetRow, count_rows, open_sheet

log = logging.getLogger(__name__)
T = TypeVar("T")

# Rows per transaction: large enough that a statement's round trip is spread over many rows,
# small enough that a crash loses little and progress moves visibly.
CHUNK_ROWS = 1000
# How often an idle worker looks for a job another replica received (its own are announced).
POLL_SECONDS = 1.0
# An upload this large surely holds more than a chunk: the row checks' processes are started
# before its rows are counted, so that they are ready when the first chunk is.
EARLY_START_BYTES = 256 * 1024
_UNEXPECTED = (
    "The import stopped on an unexpected error. Import the same file again: rows already "
    "imported are skipped."
)


def wake(app: FastAPI) -> None:
    """Tell this process's worker a job was queued (other replicas find it by polling)."""
    event: asyncio.Event | None = getattr(app.state, "import_wakeup", None)
    if event is not None:
        event.set()


async def import_worker(app: FastAPI) -> None:
    worker = f"{socket.gethostname()}:{os.getpid()}:{new_id()[:8]}"
    wakeup = app.state.import_wakeup = getattr(app.state, "import_wakeup", None) or asyncio.Event()
    stopping: asyncio.Event = app.state.stopping
    checks = app.state.import_row_checks = RowChecks(app.state.settings.import_processes)
    try:
        while not stopping.is_set():
            async with driver_connection(app.state.engine) as conn:
                job = await jobs.claim(conn, worker=worker)
            if job is None:
                checks.close()  # no job left: its processes go until the next long sheet
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wakeup.wait(), POLL_SECONDS)
                wakeup.clear()
                continue
            log.info("import claimed", extra={"fields": {"job": job.id, "resumed_at": job.done}})
            await run(app, job, worker=worker)
    finally:
        checks.close()


async def run(app: FastAPI, job: Job, *, worker: str) -> None:
    """Work a claimed job to its end (or until its lease is lost)."""
    engine = app.state.engine
    try:
        async with driver_connection(engine) as conn:
            timezone = await conn.fetchval("SELECT timezone FROM store WHERE id = $1", job.store_id)
        with tempfile.TemporaryFile() as upload:
            async with driver_connection(engine) as conn:
                await jobs.read_upload(conn, job_id=job.id, into=upload)
            runner = Runner(
                app=app,
                job=job,
                worker=worker,
                timezone=timezone,
                upload=upload,
                checks=getattr(app.state, "import_row_checks", None),
            )
            if job.kind == customer_import.KIND:
                await runner.customers()
            else:
                await runner.purchases()
        async with driver_connection(engine) as conn:
            await jobs.finish(conn, job=job, worker=worker)
    except LeaseLost:
        log.warning("import lease lost", extra={"fields": {"job": job.id}})
    except ImportRefused as exc:
        # The file turned unreadable past what was checked on upload (a CSV's later row).
        await _fail(app, job, worker, exc.detail)
    except asyncio.CancelledError:
        # Stopping: the lease runs out and a worker resumes the job after its last chunk.
        raise
    except Exception:
        log.exception("import failed", extra={"fields": {"job": job.id}})
        # A broken pool (a process killed) is not reused: the next job starts another.
        checks: RowChecks | None = getattr(app.state, "import_row_checks", None)
        if checks is not None:
            checks.close()
        await _fail(app, job, worker, _UNEXPECTED)


async def _fail(app: FastAPI, job: Job, worker: str, reason: str) -> None:
    with contextlib.suppress(LeaseLost):
        async with driver_connection(app.state.engine) as conn:
            await jobs.finish(conn, job=job, worker=worker, failure=reason)


@dataclass
class Runner:
    app: FastAPI
    job: Job
    worker: str
    timezone: str
    upload: IO[bytes]
    checks: RowChecks | None = None
    _checking_here: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)
    _own: customer_import.OwnKeys | None = field(default=None, init=False, repr=False)

    @property
    def today(self) -> date:
        return datetime.now(ZoneInfo(self.timezone)).date()

    async def _set_total(self, total: int) -> None:
        async with driver_connection(self.app.state.engine) as conn:
            await jobs.set_total(conn, job=self.job, worker=self.worker, total=total)

    # --- customers -----------------------------------------------------------------------------

    async def customers(self) -> None:
        checks = self.checks
        counting: asyncio.Task[None] | None = None
        if checks is not None and _size(self.upload) > EARLY_START_BYTES:
            checks.start()
            # A long sheet is counted by a row-check process while the others check its first
            # chunks (counted here, it held the first chunk back; counted in a thread beside
            # them, it slowed the event loop that writes them): its total arrives a moment
            # after the job starts.
            content = await asyncio.to_thread(_read_all, self.upload)
            counting = asyncio.create_task(self._count_and_set_total(checks, content))
            total = None
        else:
            total = await asyncio.to_thread(count_rows, self.upload, kind="customers")
            await self._set_total(total)
        if checks is not None and not checks.started and total is not None:
            if total > CHUNK_ROWS:
                checks.start()
            else:
                checks = None  # a short sheet: checked here, not by processes started for it
        sheet = await asyncio.to_thread(open_sheet, self.upload, kind="customers")
        rows = sheet.rows
        checking: deque[asyncio.Task[CheckedChunk]] = deque()
        writing: asyncio.Task[None] | None = None
        try:
            context = await self._store_context()
            await asyncio.to_thread(_skip, rows, self.job.done)
            today = self.today
            async with driver_connection(self.app.state.engine) as conn:
                again = await customer_import.imported_here(conn, store_id=context.store_id)
            # A store's first sheet: the job keeps its fingerprints (customer_import.OwnKeys).
            self._own = None if again else customer_import.OwnKeys()
            # While chunk N is written, the next ones are checked: one per process and four in
            # line, or one in a thread. The processes run behind the consumers (row_checks.py);
            # chunks in hand carry the writer over their moments without CPU (one left it waiting).
            ahead = checks.processes + 4 if checks is not None else 1
            read_all = False
            while True:
                while not read_all and len(checking) < ahead:
                    raw = await asyncio.to_thread(customer_checks.raw_rows, rows, CHUNK_ROWS)
                    if not raw:
                        read_all = True
                        break
                    check = self._check_customers(raw, sheet.columns, today, context, again)
                    checking.append(asyncio.create_task(check))
                if not checking:
                    break
                checked = await checking.popleft()
                if writing is not None:
                    await writing
                writing = asyncio.create_task(self._write_customers(checked, context))
            if writing is not None:
                await writing
            if counting is not None:
                await counting  # the total is set before the job is finished
        except asyncio.CancelledError:
            for task in (*checking, writing, counting):
                if task is not None:
                    task.cancel()
            raise
        except Exception:
            for task in (*checking, counting):
                if task is not None:
                    task.cancel()
            # The chunk being written is as good as it was: let it commit before failing.
            if writing is not None and not writing.done():
                with contextlib.suppress(Exception):
                    await writing
            raise
        finally:
            close = getattr(rows, "close", None)
            if close is not None:
                close()

    async def _count_and_set_total(self, checks: RowChecks, content: bytes) -> None:
        await self._set_total(await checks.run(count_rows, content, kind="customers"))

    async def _store_context(self) -> StoreContext:
        async with driver_connection(self.app.state.engine) as conn:
            staff = await conn.fetch(
                "SELECT id, name FROM staff WHERE store_id = $1 AND status = 'active'",
                self.job.store_id,
            )
        by_name: dict[str, tuple[str, ...]] = {}
        for member in staff:
            by_name[member["name"]] = (*by_name.get(member["name"], ()), member["id"])
        settings = self.app.state.settings
        return StoreContext(
            store_id=self.job.store_id,
            timezone=self.timezone,
            field_keys=tuple(settings.field_encryption_keys),
            phone_hash_key=settings.phone_hash_key,
            staff_by_name=by_name,
            staff_ids=frozenset(m["id"] for m in staff),
        )

    async def _off_loop(self, function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Pure work in the row checks' processes, or in a thread: for a short sheet, and for a
        long one's first chunks while the processes start (a start takes about half a second,
        longer than checking a chunk here: a sheet of a few thousand rows spent a third of its
        import waiting for them)."""
        if self.checks is None or not self.checks.ready:
            # One chunk at a time here: chunks checked side by side in threads share one
            # interpreter lock and all finish late, the first no sooner than the last.
            async with self._checking_here:
                if self.checks is None or not self.checks.ready:
                    return await asyncio.to_thread(functools.partial(function, *args, **kwargs))
        return await self.checks.run(function, *args, **kwargs)

    async def _check_customers(
        self,
        raw: list[customer_checks.RawRow],
        columns: Any,
        today: date,
        context: StoreContext,
        again: bool,
    ) -> CheckedChunk:
        imported: frozenset[str] = frozenset()
        if again:
            keys = await self._off_loop(
                customer_checks.fingerprints_of, raw, columns=columns, today=today
            )
            async with driver_connection(self.app.state.engine) as conn:
                found = await customer_import.imported_before(
                    conn, store_id=context.store_id, kind=customer_checks.KIND, keys=keys
                )
            imported = frozenset(found)
        return await self._off_loop(
            customer_checks.check_rows,
            raw,
            columns=columns,
            today=today,
            context=context,
            imported=imported,
        )

    async def _write_customers(self, chunk: CheckedChunk, context: StoreContext) -> None:
        """Once the chunks before are committed, the chunk and the job's progress in one
        transaction."""
        async with driver_connection(self.app.state.engine) as conn, conn.transaction():
            progress = await customer_import.write_chunk(
                conn,
                chunk=chunk,
                context=context,
                job_id=self.job.id,
                by=self.job.created_by,
                own=self._own,
            )
            await jobs.advance(conn, job=self.job, worker=self.worker, progress=progress)

    # --- purchases -----------------------------------------------------------------------------

    async def purchases(self) -> None:
        work = await asyncio.to_thread(
            _purchases_in_order, self.upload, ZoneInfo(self.timezone), self.today
        )
        await self._set_total(len(work))
        engine = self.app.state.engine
        for start in range(self.job.done, len(work), CHUNK_ROWS):
            chunk = work[start : start + CHUNK_ROWS]
            errors = [e for item in chunk if isinstance(item, list) for e in item]
            candidates = [c for c in chunk if isinstance(c, PurchaseCandidate)]
            async with driver_connection(engine) as conn:
                before = await customer_import.imported_before(
                    conn,
                    store_id=self.job.store_id,
                    kind=purchase_import.KIND,
                    keys=[c.fingerprint for c in candidates],
                )
                fresh = [c for c in candidates if c.fingerprint not in before]
                buyers = await purchase_import.buyers(
                    conn,
                    store_id=self.job.store_id,
                    phone_hash_key=self.app.state.settings.phone_hash_key,
                    candidates=fresh,
                )
                products = await purchase_import.catalogue(conn, skus=[c.sku for c in fresh])
            sales, sale_errors = purchase_import.sales_of(
                fresh,
                store_id=self.job.store_id,
                timezone=self.timezone,
                buyers=buyers,
                products=products,
            )
            async with driver_connection(engine) as conn, conn.transaction():
                progress = await purchase_import.write(
                    conn,
                    sales=sales,
                    errors=[*errors, *sale_errors],
                    skipped=len(candidates) - len(fresh),
                    store_id=self.job.store_id,
                    job_id=self.job.id,
                )
                await jobs.advance(
                    conn,
                    job=self.job,
                    worker=self.worker,
                    progress=replace(progress, rows=len(chunk)),
                )


# --- reading (off the event loop) --------------------------------------------------------------


def _size(upload: IO[bytes]) -> int:
    upload.seek(0, os.SEEK_END)
    size = upload.tell()
    upload.seek(0)
    return size


def _read_all(upload: IO[bytes]) -> bytes:
    upload.seek(0)
    content = upload.read()
    upload.seek(0)
    return content


def _skip(rows: Iterator[SheetRow], count: int) -> None:
    for _ in itertools.islice(rows, count):
        pass


Work = PurchaseCandidate | list[RowError]


def _purchases_in_order(upload: IO[bytes], zone: ZoneInfo, today: date) -> Sequence[Work]:
    """Every row of a purchase sheet: the rows in error first, then the purchases oldest first.

    The same file gives the same order, so a resumed job's committed count still names the
    rows already done. Equal lines of one sheet are told apart by their repeat number.
    """
    sheet = open_sheet(upload, kind="purchases")
    repeated = RepeatedRows()
    failed: list[Work] = []
    candidates: list[PurchaseCandidate] = []
    for row in sheet.rows:
        result = read_purchase_row(row, sheet.columns, today=today, timezone=zone)
        if isinstance(result, list):
            failed.append(result)
        else:
            result.fingerprint = repeated.key(result.fingerprint)
            candidates.append(result)
    candidates.sort(key=lambda c: (c.purchased_at, c.row))
    return [*failed, *candidates]
