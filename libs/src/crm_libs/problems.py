"""RFC 9457 problem+json errors, and the handlers that turn every failure into one."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

# The web framework and the database drivers are imported where the handlers are made, not
# here: the errors themselves are raised by pure code too (a spreadsheet import's row-check
# processes), which should not load FastAPI to start.
if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from sqlalchemy.exc import DBAPIError

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)


class ProblemError(Exception):
    """A domain failure with the HTTP status and text the client should see."""

    status = 400
    title = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        title: str | None = None,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers
        if status is not None:
            self.status = status
        if title is not None:
            self.title = title
        self.errors = errors


class NotFound(ProblemError):
    status = 404
    title = "Not found"


class Conflict(ProblemError):
    status = 409
    title = "Conflict"


class InvalidField(ProblemError):
    """422 naming the offending field, for values that parse but break a rule."""

    status = 422
    title = "Invalid field value"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", errors=[{"field": field, "message": message}])


class Unauthorized(ProblemError):
    status = 401
    title = "Unauthorized"


class Forbidden(ProblemError):
    status = 403
    title = "Forbidden"


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    from fastapi.responses import JSONResponse

    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


# Pydantic's words where they would puzzle a client: "Extra inputs are not permitted" is a typo
# or a field this resource does not take.
_MESSAGES = {"extra_forbidden": "unknown field: this resource has no field of that name"}


def _message(error: Any) -> str:
    return _MESSAGES.get(error.get("type"), error["msg"])


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error leave the service as problem+json, and never a bare 500 for bad input."""
    import asyncpg
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from sqlalchemy.exc import DBAPIError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(ProblemError)
    async def _problem(_: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(
            exc.status, exc.title, exc.detail, errors=exc.errors, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return problem_response(400, "Malformed request", "The body is not valid JSON")
        fields = [{"field": _field_path(tuple(e["loc"])), "message": _message(e)} for e in errors]
        return problem_response(
            422, "Invalid field value", "One or more fields are invalid", errors=fields
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {404: "Not found", 405: "Method not allowed", 401: "Unauthorized"}
        return problem_response(
            exc.status_code,
            titles.get(exc.status_code, "Error"),
            str(exc.detail),
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(DBAPIError)
    async def _database(_: Request, exc: DBAPIError) -> JSONResponse:
        return _database_problem(_sqlstate(exc), exc.orig)

    # The same for statements sent on the driver connection itself (crm_libs.db).
    @app.exception_handler(asyncpg.PostgresError)
    async def _driver(_: Request, exc: asyncpg.PostgresError) -> JSONResponse:
        return _database_problem(str(getattr(exc, "sqlstate", "") or ""), exc)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem_response(500, "Internal error", "An unexpected error occurred")


def _database_problem(sqlstate: str, error: BaseException | None) -> JSONResponse:
    # SQLSTATE class 22 is "data exception": input the database cannot hold (a NUL character,
    # a number out of range). The client's mistake, reported as one.
    if sqlstate.startswith("22"):
        log.info("database refused a value", extra={"fields": {"error": str(error)[:200]}})
        return problem_response(
            400, "Malformed request", "The request holds a value that cannot be stored"
        )
    log.exception("database error")
    return problem_response(500, "Internal error", "An unexpected error occurred")


def _sqlstate(exc: DBAPIError) -> str:
    """The SQLSTATE behind a driver error (asyncpg keeps it on the original exception)."""
    for candidate in (exc.orig, getattr(exc.orig, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if code:
            return str(code)
    return ""


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the problem statuses a route may answer."""
    schema = {
        "type": "object",
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                },
            },
        },
        "required": ["type", "title", "status", "detail"],
    }
    return {
        s: {"description": "Problem", "content": {PROBLEM_JSON: {"schema": schema}}}
        for s in statuses
    }
