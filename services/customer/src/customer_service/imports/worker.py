"""The import worker: runs queued import jobs in the background of the customer service.

Each service process runs one (see main.py). It claims the oldest unfinished job nobody holds
(imports/jobs.py), reads the upload back from the database (any replica may run a job another
received), and works through its rows a chunk at a time: reading and checking rows (pure Python)
off the event loop, then one transaction per chunk writing the rows, their events, their errors
and the job's progress together. A customer chunk is read and checked while the one before it
is written; what depends on that one's rows (rows it imported, referrers among its files) is
settled once it is committed. A job resumed after a crash skips the rows its committed
progress counts.
"""

import asyncio
import contextlib
import itertools
import logging
import os
import socket
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import IO, Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI

from crm_libs.db import driver_connection
from crm_libs.ids import new_id
from customer_service.imports import customer_import, jobs, purchase_import
from customer_service.imports.customer_rows import CustomerCandidate, read_customer_row
from customer_service.imports.headers import Columns
from customer_service.imports.jobs import Job, LeaseLost
from customer_service.imports.purchase_rows import PurchaseCandidate, read_purchase_row
from customer_service.imports.rows import RepeatedRows, RowError
from customer_service.imports.sheets import ImportRefused, SheetRow, open_sheet

log = logging.getLogger(__name__)

# Rows per transaction: large enough that a statement's round trip is spread over many rows,
# small enough that a crash loses little and progress moves visibly.
CHUNK_ROWS = 1000
# How often an idle worker looks for a job another replica received (its own are announced).
POLL_SECONDS = 1.0
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
    while not stopping.is_set():
        async with driver_connection(app.state.engine) as conn:
            job = await jobs.claim(conn, worker=worker)
        if job is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), POLL_SECONDS)
            wakeup.clear()
            continue
        log.info("import claimed", extra={"fields": {"job": job.id, "resumed_at": job.done}})
        await run(app, job, worker=worker)


async def run(app: FastAPI, job: Job, *, worker: str) -> None:
    """Work a claimed job to its end (or until its lease is lost)."""
    engine = app.state.engine
    try:
        async with driver_connection(engine) as conn:
            timezone = await conn.fetchval("SELECT timezone FROM store WHERE id = $1", job.store_id)
        with tempfile.TemporaryFile() as upload:
            async with driver_connection(engine) as conn:
                await jobs.read_upload(conn, job_id=job.id, into=upload)
            runner = Runner(app=app, job=job, worker=worker, timezone=timezone, upload=upload)
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

    @property
    def today(self) -> date:
        return datetime.now(ZoneInfo(self.timezone)).date()

    async def _set_total(self, total: int) -> None:
        async with driver_connection(self.app.state.engine) as conn:
            await jobs.set_total(conn, job=self.job, worker=self.worker, total=total)

    # --- customers -----------------------------------------------------------------------------

    async def customers(self) -> None:
        total = await asyncio.to_thread(_count_rows, self.upload, "customers")
        await self._set_total(total)
        sheet = await asyncio.to_thread(open_sheet, self.upload, kind="customers")
        rows = sheet.rows
        try:
            context = await self._store_context()
            await asyncio.to_thread(_skip, rows, self.job.done)
            today = self.today
            # Chunk N+1 is read and checked (in a thread) while chunk N is written: the checks
            # are Python work, the write mostly waits on PostgreSQL.
            writing: asyncio.Task[None] | None = None
            try:
                while True:
                    read = await asyncio.to_thread(_read_customers, rows, sheet.columns, today)
                    if not read.count:
                        break
                    checked = await self._check_customers(read, context)
                    if writing is not None:
                        await writing
                    writing = asyncio.create_task(self._write_customers(read, checked, context))
                if writing is not None:
                    await writing
            except asyncio.CancelledError:
                if writing is not None:
                    writing.cancel()
                raise
            except Exception:
                # The chunk being written is as good as it was: let it commit before failing.
                if writing is not None and not writing.done():
                    with contextlib.suppress(Exception):
                        await writing
                raise
        finally:
            close = getattr(rows, "close", None)
            if close is not None:
                close()

    async def _store_context(self) -> customer_import.StoreContext:
        async with driver_connection(self.app.state.engine) as conn:
            staff = await conn.fetch(
                "SELECT id, name FROM staff WHERE store_id = $1 AND status = 'active'",
                self.job.store_id,
            )
        by_name: dict[str, tuple[str, ...]] = {}
        for member in staff:
            by_name[member["name"]] = (*by_name.get(member["name"], ()), member["id"])
        settings = self.app.state.settings
        return customer_import.StoreContext(
            store_id=self.job.store_id,
            timezone=self.timezone,
            cipher=self.app.state.cipher,
            phone_hash_key=settings.phone_hash_key,
            staff_by_name=by_name,
            staff_ids=frozenset(m["id"] for m in staff),
        )

    async def _check_customers(
        self, read: "ReadChunk", context: customer_import.StoreContext
    ) -> "CheckedChunk":
        candidates = [c for c in read.candidates if isinstance(c, CustomerCandidate)]
        async with driver_connection(self.app.state.engine) as conn:
            before = await customer_import.imported_before(
                conn,
                store_id=context.store_id,
                kind=customer_import.KIND,
                keys=[c.fingerprint for c in candidates],
            )
        fresh = [c for c in candidates if c.fingerprint not in before]
        checked = await asyncio.to_thread(customer_import.check, fresh, context=context)
        return CheckedChunk(rows=len(candidates), checked=checked)

    async def _write_customers(
        self, read: "ReadChunk", chunk: "CheckedChunk", context: customer_import.StoreContext
    ) -> None:
        """Once the previous chunk is committed: the rows it imported are skipped, referrers
        are found (among its files too), and the chunk is written in one transaction."""
        engine = self.app.state.engine
        async with driver_connection(engine) as conn:
            before = await customer_import.imported_before(
                conn,
                store_id=context.store_id,
                kind=customer_import.KIND,
                keys=[c.candidate.fingerprint for c in chunk.checked],
            )
            checked = [c for c in chunk.checked if c.candidate.fingerprint not in before]
            referrers = await customer_import.referrers(
                conn, context=context, candidates=[c.candidate for c in checked]
            )
        prepared = customer_import.resolve(checked, context=context, referrers=referrers)
        prepared.errors = [*read.errors, *prepared.errors]
        prepared.skipped = chunk.rows - len(checked)
        async with driver_connection(engine) as conn, conn.transaction():
            _, progress = await customer_import.write(
                conn, prepared=prepared, context=context, job_id=self.job.id
            )
            await jobs.advance(
                conn, job=self.job, worker=self.worker, progress=replace(progress, rows=read.count)
            )

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


@dataclass(slots=True)
class ReadChunk:
    count: int
    candidates: list[CustomerCandidate]
    errors: list[RowError]


@dataclass(slots=True)
class CheckedChunk:
    rows: int  # the chunk's rows read as candidates
    checked: list[customer_import.Checked]


def _count_rows(upload: IO[bytes], kind: Any) -> int:
    sheet = open_sheet(upload, kind=kind)
    return sum(1 for _ in sheet.rows)


def _skip(rows: Iterator[SheetRow], count: int) -> None:
    for _ in itertools.islice(rows, count):
        pass


def _read_customers(rows: Iterator[SheetRow], columns: Columns, today: date) -> ReadChunk:
    read = ReadChunk(0, [], [])
    for row in itertools.islice(rows, CHUNK_ROWS):
        read.count += 1
        result = read_customer_row(row, columns, today=today)
        if isinstance(result, list):
            read.errors.extend(result)
        else:
            read.candidates.append(result)
    return read


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
