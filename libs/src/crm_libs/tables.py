"""A report's table in the form the client asks for by ``Accept``: JSON (the default), CSV or an
XLSX workbook, because store managers work in spreadsheets (DOMAIN.md §10).

One description of the columns (:class:`Column`) serves the three: CSV and the workbook have a
header row of the API's field names (so a sheet and the JSON read alike), the workbook titles
each column in Chinese too and gives numbers their formats (money with two places, rates as
percentages) so a manager can sum and chart them as they are. A media type none of the three
answers is a 406 problem naming those offered.
"""

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import xlsxwriter
from fastapi import Response

from crm_libs.problems import ProblemError

JSON = "application/json"
CSV = "text/csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# What a wildcard stands for: JSON, the default, wherever it is offered.
_OFFERED = {
    JSON: JSON,
    CSV: CSV,
    XLSX: XLSX,
    "application/*": JSON,
    "text/*": CSV,
    "*/*": JSON,
}

Kind = Literal["text", "integer", "money", "rate"]


@dataclass(frozen=True, slots=True)
class Column:
    name: str  # the API's field name, the key of each row
    title: str  # the reader's word for it (the workbook's second header line)
    kind: Kind = "text"


def media_type(accept: str | None) -> str:
    """The type to answer with, by the quality values of RFC 9110 §12.5.1 (JSON when equally
    preferred); a 406 problem when none of JSON, CSV or XLSX is acceptable."""
    best, best_q = None, 0.0
    for part in (accept or "*/*").split(","):
        media, *params = [p.strip().lower() for p in part.split(";")]
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        offered = _OFFERED.get(media)
        if offered and q > 0 and (q, offered == JSON) > (best_q, best == JSON):
            best, best_q = offered, q
    if best is None:
        raise ProblemError(
            f"This table is offered as {JSON}, {CSV} or {XLSX}", status=406, title="Not Acceptable"
        )
    return best


# The responses' declaration for the OpenAPI document of a route answered by ``table_response``.
TABLE_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {"content": {JSON: {}, CSV: {"schema": {"type": "string"}}, XLSX: {}}}
}


def table_response(
    *,
    media: str,
    name: str,
    columns: Sequence[Column],
    rows: Sequence[Mapping[str, Any]],
) -> Response:
    """The rows as CSV or a workbook (``media`` from :func:`media_type`, not JSON), as an
    attachment named ``name`` (and the workbook's sheet)."""
    if media == CSV:
        return Response(
            csv_bytes(columns, rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return Response(
        workbook_bytes(name, columns, rows),
        media_type=XLSX,
        headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
    )


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return str(value)


def csv_bytes(columns: Sequence[Column], rows: Sequence[Mapping[str, Any]]) -> bytes:
    """A header of field names, then one line per row; UTF-8 with a byte-order mark, so a
    spreadsheet opening the file by double-click reads the Chinese right."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([c.name for c in columns])
    for row in rows:
        writer.writerow([_text(row.get(c.name)) for c in columns])
    return ("\ufeff" + out.getvalue()).encode()


def workbook_bytes(
    sheet: str, columns: Sequence[Column], rows: Sequence[Mapping[str, Any]]
) -> bytes:
    """One sheet: the field names, the titles, then the rows with their numbers' formats."""
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    bold = book.add_format({"bold": True})
    formats = {
        "integer": book.add_format({"num_format": "0"}),
        "money": book.add_format({"num_format": "#,##0.00"}),
        "rate": book.add_format({"num_format": "0.00%"}),
        "text": None,
    }
    ws = book.add_worksheet(sheet[:31])  # Excel's limit on a sheet's name
    for i, column in enumerate(columns):
        ws.write_string(0, i, column.name, bold)
        ws.write_string(1, i, column.title, bold)
        ws.set_column(i, i, max(12, len(column.name) + 2))
    ws.freeze_panes(2, 0)
    for r, row in enumerate(rows, start=2):
        for i, column in enumerate(columns):
            value = row.get(column.name)
            if value is None:
                ws.write_blank(r, i, None)
            elif column.kind == "text":
                ws.write_string(r, i, str(value))
            else:
                ws.write_number(r, i, float(value), formats[column.kind])
    book.close()
    return out.getvalue()
