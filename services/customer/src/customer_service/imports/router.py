"""POST /imports, GET /imports/{id} and its error report: spreadsheet imports as jobs."""

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from crm_libs.db import driver_connection, request_connection
from crm_libs.principal import Principal
from crm_libs.problems import InvalidField, NotFound, problem_responses
from customer_service.deps import PrincipalDep
from customer_service.imports import jobs, uploads, worker
from customer_service.imports.schemas import ImportJobPublic
from customer_service.imports.sheets import open_sheet

router = APIRouter(prefix="/imports", tags=["imports"])
# Errors shown with the job; the CSV report has all of them.
SHOWN_ERRORS = 100
_KINDS = ("customers", "purchases")
_REPORT_BATCH = 5000


@router.post(
    "",
    response_model=ImportJobPublic,
    status_code=202,
    summary="Import a spreadsheet of customers or of purchase history (multipart: file, "
    "store_id, kind)",
    description="Purchase history becomes ordinary purchases that earn points as a sale does, "
    "each as of its own day: points older than the store's expiry months are recorded earned "
    "and expired at once (an earn and an expire row naming the purchase), and the level follows "
    "the 12-month spend the history makes.",
    responses=problem_responses(400, 401, 413, 415, 422),
)
async def create_import(request: Request, principal: PrincipalDep) -> dict[str, Any]:
    upload = await uploads.receive(request)
    try:
        kind = upload.fields.get("kind") or "customers"
        if kind not in _KINDS:
            raise InvalidField("kind", f"{kind} is not one of {', '.join(_KINDS)}")
        store_id = upload.fields.get("store_id") or principal.store_id
        if not store_id:
            raise InvalidField("store_id", "name the store to import into")
        # The whole file is refused now, before anything is written: type, size, emptiness, a
        # header with the columns the kind needs and at least one row under it.
        sheet = await asyncio.to_thread(open_sheet, upload.file, kind=kind)  # type: ignore[arg-type]
        close = getattr(sheet.rows, "close", None)
        if close is not None:
            close()
        async with request_connection(request) as conn:
            await _check_store(conn, principal, store_id)
            row = await jobs.create(
                conn,
                store_id=store_id,
                kind=kind,
                created_by=principal.subject,
                filename=upload.filename,
                upload=upload.file,
                size=upload.size,
            )
    finally:
        upload.file.close()
    worker.wake(request.app)
    return jobs.public(row, [])


async def _check_store(conn: Any, principal: Principal, store_id: str) -> None:
    exists = await conn.fetchval("SELECT true FROM store WHERE id = $1", store_id)
    if not exists or (not principal.sees_all_stores and store_id != principal.store_id):
        raise InvalidField("store_id", "unknown store")


@router.get(
    "/{import_id}",
    response_model=ImportJobPublic,
    summary="An import job's progress and first errors",
    responses=problem_responses(401, 404),
)
async def get_import(import_id: str, request: Request, principal: PrincipalDep) -> dict[str, Any]:
    async with request_connection(request) as conn:
        row = await jobs.get(conn, job_id=import_id, store_scope=principal.store_scope())
        if row is None:
            raise NotFound("No such import")
        errors = await jobs.first_errors(conn, job_id=import_id, limit=SHOWN_ERRORS)
    return jobs.public(row, errors)


@router.get(
    "/{import_id}/errors",
    summary="Every row error of an import, as CSV (row, field, message)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}, **problem_responses(401, 404)},
)
async def import_errors(
    import_id: str, request: Request, principal: PrincipalDep
) -> StreamingResponse:
    async with request_connection(request) as conn:
        row = await jobs.get(conn, job_id=import_id, store_scope=principal.store_scope())
    if row is None:
        raise NotFound("No such import")
    engine = request.app.state.engine

    async def report() -> AsyncIterator[bytes]:
        # A BOM: Excel opens UTF-8 CSV with Chinese text correctly only with one.
        yield "\ufeffrow,field,message\r\n".encode()
        seq = 0
        while True:
            async with driver_connection(engine) as conn:
                batch = await jobs.errors_after(
                    conn, job_id=import_id, seq=seq, limit=_REPORT_BATCH
                )
            if not batch:
                return
            text = io.StringIO()
            writer = csv.writer(text)
            for error in batch:
                writer.writerow((error["row"], error["field"], error["message"]))
            yield text.getvalue().encode()
            seq = batch[-1]["seq"]

    return StreamingResponse(
        report(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{import_id}-errors.csv"'},
    )
