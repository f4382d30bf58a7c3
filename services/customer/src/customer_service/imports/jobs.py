"""Import jobs in the database: created with their upload, claimed by one worker at a time under a
lease, advanced a chunk at a time, finished or failed.

Every replica's worker claims from the same table (``FOR UPDATE SKIP LOCKED``: two workers never
take one job). A claimed job carries its worker's lease; each committed chunk renews it, and a
job whose lease ran out (its worker crashed or was killed) is claimed again and resumed after its
last committed chunk: ``done`` counts the rows whose outcome (written, skipped or reported) is
committed, in the same transaction as that outcome.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from crm_libs.ids import new_id
from customer_service.imports.rows import RowError

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
# Stored in pieces: a row never holds the whole file, and neither does a statement.
UPLOAD_CHUNK_BYTES = 1024 * 1024
# Long enough for a chunk of rows on a busy machine; a crashed worker's job waits this long.
LEASE_SECONDS = 30.0


class LeaseLost(Exception):
    """Another worker holds the job now (this one was too slow to renew): stop, write nothing."""


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    store_id: str
    kind: str
    status: str
    total: int | None
    done: int
    created: int
    skipped: int
    error_count: int
    created_by: str
    lease_owner: str | None

    @classmethod
    def of(cls, row: Any) -> "Job":
        return cls(**{name: row[name] for name in cls.__slots__})  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Progress:
    """What one chunk did: rows it finished (every outcome), files or purchases it wrote, rows
    skipped as imported before, and the rows it reports."""

    rows: int
    created: int = 0
    skipped: int = 0
    errors: Sequence[RowError] = ()


_INSERT_JOB = """
    INSERT INTO import_job (id, store_id, kind, filename, size, created_by)
    VALUES ($1, $2, $3, $4, $5, $6)
    RETURNING *
"""
_INSERT_UPLOAD_CHUNK = "INSERT INTO import_upload_chunk (job_id, seq, data) VALUES ($1, $2, $3)"


async def create(
    conn: Any,
    *,
    store_id: str,
    kind: str,
    created_by: str,
    filename: str | None,
    upload: IO[bytes],
    size: int,
) -> Any:
    """A queued job with its upload, in one transaction: a worker never sees half a file."""
    upload.seek(0)
    async with conn.transaction():
        row = await conn.fetchrow(_INSERT_JOB, new_id(), store_id, kind, filename, size, created_by)
        seq = 0
        while data := upload.read(UPLOAD_CHUNK_BYTES):
            await conn.execute(_INSERT_UPLOAD_CHUNK, row["id"], seq, data)
            seq += 1
    return row


async def read_upload(conn: Any, *, job_id: str, into: IO[bytes]) -> None:
    """The job's upload written into ``into``, a piece at a time."""
    seq = 0
    while True:
        data = await conn.fetchval(
            "SELECT data FROM import_upload_chunk WHERE job_id = $1 AND seq = $2", job_id, seq
        )
        if data is None:
            break
        into.write(data)
        seq += 1
    into.seek(0)


async def get(conn: Any, *, job_id: str, store_scope: str | None) -> Any:
    """The job, if the caller's store may see it (None otherwise, as if it did not exist)."""
    return await conn.fetchrow(
        "SELECT * FROM import_job WHERE id = $1 AND ($2::text IS NULL OR store_id = $2)",
        job_id,
        store_scope,
    )


async def first_errors(conn: Any, *, job_id: str, limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        'SELECT "row", field, message FROM import_error WHERE job_id = $1 ORDER BY seq LIMIT $2',
        job_id,
        limit,
    )
    return [dict(r) for r in rows]


async def errors_after(conn: Any, *, job_id: str, seq: int, limit: int) -> list[Any]:
    rows: list[Any] = await conn.fetch(
        'SELECT seq, "row", field, message FROM import_error WHERE job_id = $1 AND seq > $2 '
        "ORDER BY seq LIMIT $3",
        job_id,
        seq,
        limit,
    )
    return rows


# The oldest unfinished job nobody holds: queued, or running under a lease that ran out.
_CLAIM = """
    UPDATE import_job
    SET status = 'running', lease_owner = $1,
        lease_until = now() + make_interval(secs => $2),
        started_at = coalesce(started_at, now())
    WHERE id = (
        SELECT id FROM import_job
        WHERE status = 'queued' OR (status = 'running' AND lease_until < now())
        ORDER BY created_at
        LIMIT 1
        FOR UPDATE SKIP LOCKED
    )
    RETURNING *
"""


async def claim(conn: Any, *, worker: str, lease_seconds: float = LEASE_SECONDS) -> Job | None:
    row = await conn.fetchrow(_CLAIM, worker, lease_seconds)
    return None if row is None else Job.of(row)


_SET_TOTAL = """
    UPDATE import_job SET total = $3, lease_until = now() + make_interval(secs => $4)
    WHERE id = $1 AND lease_owner = $2 AND status = 'running'
"""


async def set_total(conn: Any, *, job: Job, worker: str, total: int) -> None:
    if await conn.execute(_SET_TOTAL, job.id, worker, total, LEASE_SECONDS) == "UPDATE 0":
        raise LeaseLost(job.id)


# Locks the job's row for the chunk's transaction: the lease is checked and renewed, and the
# error numbers it returns are this chunk's alone.
_ADVANCE = """
    UPDATE import_job
    SET done = done + $3, created = created + $4, skipped = skipped + $5,
        error_count = error_count + $6, lease_until = now() + make_interval(secs => $7)
    WHERE id = $1 AND lease_owner = $2 AND status = 'running'
    RETURNING error_count
"""
_INSERT_ERRORS = """
    INSERT INTO import_error (job_id, seq, "row", field, message)
    SELECT $1, s, r, f, m FROM unnest($2::int[], $3::int[], $4::text[], $5::text[]) AS e(s, r, f, m)
"""


async def advance(conn: Any, *, job: Job, worker: str, progress: Progress) -> None:
    """Record a chunk's outcome; inside the transaction that wrote its rows."""
    errors = progress.errors
    count = await conn.fetchval(
        _ADVANCE,
        job.id,
        worker,
        progress.rows,
        progress.created,
        progress.skipped,
        len(errors),
        LEASE_SECONDS,
    )
    if count is None:
        raise LeaseLost(job.id)
    if errors:
        first = count - len(errors)
        await conn.execute(
            _INSERT_ERRORS,
            job.id,
            list(range(first + 1, count + 1)),
            [e.row for e in errors],
            [e.field for e in errors],
            [e.message for e in errors],
        )


_FINISH = """
    UPDATE import_job
    SET status = $3, failure = $4, finished_at = now(), lease_owner = NULL, lease_until = NULL
    WHERE id = $1 AND lease_owner = $2 AND status = 'running'
"""


async def finish(conn: Any, *, job: Job, worker: str, failure: str | None = None) -> None:
    """Done (or failed with the reason); the upload is no longer needed."""
    async with conn.transaction():
        status = FAILED if failure else DONE
        if await conn.execute(_FINISH, job.id, worker, status, failure) == "UPDATE 0":
            raise LeaseLost(job.id)
        await conn.execute("DELETE FROM import_upload_chunk WHERE job_id = $1", job.id)


def public(row: Any, errors: list[dict[str, Any]]) -> dict[str, Any]:
    """The job as the API shows it."""
    return {
        "id": row["id"],
        "store_id": row["store_id"],
        "kind": row["kind"],
        "status": row["status"],
        "filename": row["filename"],
        "total": row["total"],
        "done": row["done"],
        "created": row["created"],
        "skipped": row["skipped"],
        "error_count": row["error_count"],
        "errors": errors,
        "failure": row["failure"],
        "created_by": row["created_by"],
        "created_at": _iso(row["created_at"]),
        "started_at": _iso(row["started_at"]),
        "finished_at": _iso(row["finished_at"]),
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
