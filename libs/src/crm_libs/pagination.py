"""Keyset pagination: ``?limit=&cursor=`` in, ``{items, next_cursor}`` out."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select
from sqlalchemy.orm import Mapped

from crm_libs.problems import ProblemError

T = TypeVar("T")
Q = TypeVar("Q", bound=Select[Any])
DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class PageParams(BaseModel):
    limit: int
    after: str | None


_CURSOR_MARK = "k1:"  # versioned, so a cursor from another format is refused, not misread


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode((_CURSOR_MARK + last_id).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        decoded = base64.b64decode(padded.encode(), altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProblemError("The cursor is not one this API issued", status=400) from exc
    if not decoded.startswith(_CURSOR_MARK):
        raise ProblemError("The cursor is not one this API issued", status=400)
    return decoded[len(_CURSOR_MARK) :]


async def page_params(  # async: a plain def dependency runs in the thread pool
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> PageParams:
    return PageParams(limit=limit, after=decode_cursor(cursor) if cursor else None)


def keyset(
    query: Q,
    column: ColumnElement[Any] | Mapped[Any],
    params: PageParams,
    *,
    key: Callable[[str], Any] = str,
) -> Q:
    """``query`` narrowed to the page after the cursor: in ``column`` order, ``limit + 1`` rows.

    The extra row tells ``page_of`` whether another page follows; ``column`` must be unique and
    is what the cursor carries. ``key`` turns the cursor back into the column's type.
    """
    query = query.order_by(column).limit(params.limit + 1)
    if params.after:
        query = query.where(column > key(params.after))
    return query


def page_of(rows: list[T], params: PageParams, *, id_of: str = "id") -> Page[T]:
    """Build a page from ``limit + 1`` rows fetched in id order."""
    has_more = len(rows) > params.limit
    items = rows[: params.limit]
    next_cursor = encode_cursor(str(getattr(items[-1], id_of))) if has_more and items else None
    return Page[T](items=items, next_cursor=next_cursor)


def next_cursor(
    rows: Sequence[Mapping[str, Any]], params: PageParams, *, id_of: str = "id"
) -> str | None:
    """``page_of``'s cursor for rows read by column name (a route serialising its page itself):
    the page is ``rows[:params.limit]``."""
    if len(rows) <= params.limit or params.limit < 1:
        return None
    return encode_cursor(str(rows[params.limit - 1][id_of]))
