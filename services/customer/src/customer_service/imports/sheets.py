"""An uploaded spreadsheet read into rows: CSV or XLSX, told apart by its bytes, never its name.

Rows are streamed: CSV is decoded as it is read, and XLSX cells become Python values one row at
a time (calamine keeps the sheet's cells once, natively; Python never holds more than a row).
"""

import codecs
import csv
import io
import zipfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import IO, Literal

from python_calamine import CalamineError, CalamineWorkbook, SheetTypeEnum, SheetVisibleEnum

from crm_libs.problems import ProblemError
from customer_service.imports.headers import Columns, Kind, normalise_header, recognise_headers

MAX_BYTES = 50 * 1024 * 1024
# An XLSX is a ZIP, and a small ZIP can unpack to gigabytes. Real sheets unpack to 5-15 times
# their size; refusing beyond this keeps a crafted file from taking the machine's memory.
MAX_UNPACKED_RATIO = 30
# Title rows (《顾客关系管理表》, a date, a store name) often sit above the header row.
HEADER_SEARCH_ROWS = 10
_SAMPLE_BYTES = 64 * 1024
_CHUNK_BYTES = 64 * 1024
_DELIMITERS = (",", "\t", ";")
# A sheet named like one of these is read rather than the first one.
_PREFERRED_SHEETS: dict[Kind, tuple[str, ...]] = {
    "customers": ("顾客关系管理", "顾客档案", "客户档案", "顾客资料", "客户资料", "customers"),
    "purchases": ("消费记录", "购买记录", "销售记录", "消费明细", "销售明细", "purchases"),
}
# A totals row at the bottom of a till export is not a purchase.
_TOTAL_ROWS = frozenset({"合计", "总计"})
_TOTAL_MARK = "计"

Cell = str | int | float | bool | date | datetime | time | timedelta
Upload = bytes | IO[bytes]

_SIGNATURES = (
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"{\\rtf", "an RTF document"),
)
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_NOT_A_SPREADSHEET = "This is {what}, not a spreadsheet: upload an XLSX or CSV file."
_ZIP_CONTENTS = (
    ("word/document.xml", "a Word document"),
    ("ppt/presentation.xml", "a PowerPoint presentation"),
    ("content.xml", "an OpenDocument file"),
)


class ImportRefused(ProblemError):
    """The whole file is refused before anything is written; the detail tells the user why."""

    status = 422
    title = "Import refused"
    _STATUS_BY_REASON = {"too_large": 413, "unsupported_type": 415}

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail, status=self._STATUS_BY_REASON.get(reason, 422))
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SheetRow:
    """One row under the header: its number as the spreadsheet shows it, and its cells."""

    number: int
    cells: Sequence[Cell]


@dataclass(frozen=True, slots=True)
class Sheet:
    format: Literal["csv", "xlsx"]
    # The worksheet read (XLSX), or the encoding and delimiter found (CSV): for the job's report.
    source: str
    columns: Columns
    rows: Iterator[SheetRow]


def count_rows(upload: Upload, *, kind: Kind) -> int:
    """The rows of a sheet under its header, as ``open_sheet`` gives them (for a job's total)."""
    return sum(1 for _ in open_sheet(upload, kind=kind).rows)


def open_sheet(upload: Upload, *, kind: Kind, max_bytes: int = MAX_BYTES) -> Sheet:
    """Read an upload's header row and stand ready to stream the rows under it.

    Raises ImportRefused for a file that is empty, too large, of another type, unreadable,
    without the columns `kind` needs, or with a header and no rows. A CSV that turns unreadable
    further down raises it while the rows are iterated.
    """
    stream = io.BytesIO(upload) if isinstance(upload, bytes | bytearray) else upload
    size = stream.seek(0, io.SEEK_END)
    if size == 0:
        raise ImportRefused("empty", "The file is empty.")
    if size > max_bytes:
        raise ImportRefused(
            "too_large",
            f"The file is {megabytes(size)} MB; files up to {megabytes(max_bytes)} MB are "
            "imported. Split it into smaller files.",
        )
    stream.seek(0)
    head = stream.read(_SAMPLE_BYTES)
    stream.seek(0)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        unpacked_limit = max_bytes * MAX_UNPACKED_RATIO
        sheet_name, raw = _xlsx_rows(stream, kind=kind, unpacked_limit=unpacked_limit)
        return _under_header(raw, kind=kind, format="xlsx", source=sheet_name)
    _refuse_binary(head)
    encoding = _encoding(stream, head)
    delimiter = _delimiter(head, encoding, whole=size <= len(head))
    raw = _csv_rows(stream, encoding=encoding, delimiter=delimiter)
    return _under_header(raw, kind=kind, format="csv", source=f"{encoding}, {delimiter!r}")


def megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f}".removesuffix(".0")


def _refuse_binary(head: bytes) -> None:
    if head.startswith(_OLE2):
        raise ImportRefused(
            "unsupported_type",
            "This is an old Excel .xls workbook or a password-protected one: save it as .xlsx "
            "without a password, or as CSV, and upload that.",
        )
    for signature, what in _SIGNATURES:
        if head.startswith(signature):
            raise ImportRefused("unsupported_type", _NOT_A_SPREADSHEET.format(what=what))
    if b"\x00" in head and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ImportRefused(
            "unsupported_type", "This is not a spreadsheet: upload an XLSX or CSV file."
        )


# ---- CSV ----------------------------------------------------------------------------------


def _encoding(stream: IO[bytes], head: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with a BOM, or GB18030, the superset of the GBK that
    Chinese Excel saves CSV in. The whole file is checked, a chunk at a time: a sample could
    pass as UTF-8 and fail on row 50,000."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    for encoding in ("utf-8", "gb18030"):
        if _decodes(stream, encoding):
            return encoding
    raise ImportRefused(
        "unreadable",
        "The file's text is neither UTF-8 nor GBK: save it again as CSV (UTF-8) or as XLSX.",
    )


def _decodes(stream: IO[bytes], encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    stream.seek(0)
    try:
        while chunk := stream.read(_CHUNK_BYTES):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    finally:
        stream.seek(0)
    return True


def _delimiter(head: bytes, encoding: str, *, whole: bool) -> str:
    """The delimiter that splits the most of the first lines into one same number of cells.

    Counting cells alone is not enough: 「张三;杭州市, 西湖区;1,280.00」 splits into three by
    commas too, but only the semicolon splits the header row the same way.
    """
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(head, final=whole)
    lines = [line for line in text.splitlines()[:21] if line.strip()]
    if not whole and len(lines) > 1:
        lines = lines[:-1]  # the sample may end inside a line
    best, best_score = ",", (0, 0)
    for delimiter in _DELIMITERS:
        try:
            widths = Counter(len(cells) for cells in csv.reader(lines, delimiter=delimiter))
        except csv.Error:
            continue
        width, agreeing = max(widths.items(), key=lambda item: (item[1], item[0]), default=(1, 0))
        score = (agreeing, width) if width > 1 else (0, 0)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _csv_rows(stream: IO[bytes], *, encoding: str, delimiter: str) -> Iterator[SheetRow]:
    stream.seek(0)
    text = io.TextIOWrapper(stream, encoding=encoding, newline="")
    number = 0
    try:
        # A quoted cell may hold line breaks: Excel shows such a record as one row, and so
        # rows are counted by record, not by line.
        for number, cells in enumerate(csv.reader(text, delimiter=delimiter), start=1):  # noqa: B007
            yield SheetRow(number, cells)
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ImportRefused(
            "unreadable", f"Row {number + 1} of the CSV file cannot be read ({exc})."
        ) from exc
    finally:
        # The upload belongs to the caller: leave it open.
        text.detach()


# ---- XLSX ---------------------------------------------------------------------------------


def _xlsx_rows(
    stream: IO[bytes], *, kind: Kind, unpacked_limit: int
) -> tuple[str, Iterator[SheetRow]]:
    try:
        with zipfile.ZipFile(stream) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, NotImplementedError, OSError, ValueError) as exc:
        raise ImportRefused(
            "unreadable", "The file is a damaged ZIP or XLSX file and cannot be read."
        ) from exc
    names = {member.filename for member in members}
    if "xl/workbook.xml" not in names:
        what = next((what for name, what in _ZIP_CONTENTS if name in names), "a ZIP archive")
        raise ImportRefused("unsupported_type", _NOT_A_SPREADSHEET.format(what=what))
    if sum(member.file_size for member in members) > unpacked_limit:
        raise ImportRefused(
            "too_large",
            "The workbook unpacks to more than "
            f"{megabytes(unpacked_limit)} MB: split it into smaller files.",
        )
    stream.seek(0)
    try:
        workbook = CalamineWorkbook.from_filelike(stream)
        name = _choose_sheet(workbook, kind=kind)
        sheet = workbook.get_sheet_by_name(name)
    except (CalamineError, ValueError, OSError) as exc:
        raise ImportRefused("unreadable", f"The XLSX workbook cannot be read ({exc}).") from exc
    if sheet.start is None:
        # calamine cannot iterate a sheet without cells.
        workbook.close()
        raise ImportRefused("empty", f"The sheet 《{name}》 is empty.")
    return name, _numbered(workbook, sheet.iter_rows())


def _choose_sheet(workbook: CalamineWorkbook, *, kind: Kind) -> str:
    sheets = [m for m in workbook.sheets_metadata if m.typ == SheetTypeEnum.WorkSheet]
    visible = [m for m in sheets if m.visible == SheetVisibleEnum.Visible] or sheets
    if not visible:
        raise ImportRefused("empty", "The workbook has no worksheet.")
    for metadata in visible:
        name = normalise_header(metadata.name)
        if any(word in name for word in _PREFERRED_SHEETS[kind]):
            return metadata.name
    return visible[0].name


def _numbered(workbook: CalamineWorkbook, rows: Iterator[list[Cell]]) -> Iterator[SheetRow]:
    # calamine's rows start at the sheet's first row (leading empty rows come back empty), so
    # the position is the row number Excel shows.
    try:
        for number, cells in enumerate(rows, start=1):
            yield SheetRow(number, cells)
    finally:
        workbook.close()


# ---- both ---------------------------------------------------------------------------------


def _joined(cells: Sequence[Cell]) -> str | None:
    """The cells' texts joined in C (all of a CSV row's are text), or None when a cell is no
    text (a number, a date, a workbook's None)."""
    try:
        return "".join(cells)  # type: ignore[arg-type]
    except TypeError:
        return None


def _is_empty(cells: Sequence[Cell]) -> bool:
    """Whether every cell is blank text (a cell that is no text is something)."""
    joined = _joined(cells)
    return joined is not None and not joined.strip()


def _under_header(
    raw: Iterator[SheetRow], *, kind: Kind, format: Literal["csv", "xlsx"], source: str
) -> Sheet:
    try:
        columns = _find_header(raw, kind=kind)
        # A CSV's cells are all text: no number typed into an identifier column to turn back.
        text_indices = columns.text_indices if format == "xlsx" else frozenset()
        rows = _data_rows(raw, text_indices=text_indices)
        first = next(rows, None)
    except BaseException:
        _close(raw)
        raise
    if first is None:
        _close(raw)
        raise ImportRefused("no_rows", "The sheet has a header row but no rows under it.")
    return Sheet(format=format, source=source, columns=columns, rows=_chain(first, rows))


def _close(rows: Iterator[SheetRow]) -> None:
    close = getattr(rows, "close", None)
    if close is not None:
        close()


def _find_header(raw: Iterator[SheetRow], *, kind: Kind) -> Columns:
    first: Columns | None = None
    seen = 0
    for row in raw:
        if _is_empty(row.cells):
            continue
        columns = recognise_headers(row.cells, kind=kind, row=row.number)
        if not columns.missing:
            return columns
        first = first or columns
        seen += 1
        if seen == HEADER_SEARCH_ROWS:
            break
    if first is None:
        raise ImportRefused("empty", "The sheet has no rows.")
    headers = ", ".join(c.header for c in first.recognised) or "none recognised"
    raise ImportRefused(
        "no_header",
        f"No header row with the columns {' and '.join(first.missing)} was found in the first "
        f"{HEADER_SEARCH_ROWS} rows (row {first.row} has: {headers}).",
    )


def _data_rows(raw: Iterator[SheetRow], *, text_indices: frozenset[int]) -> Iterator[SheetRow]:
    try:
        for row in raw:
            cells = row.cells
            if _passed_over(cells):
                continue
            if text_indices and any(
                isinstance(cells[i], int | float) for i in text_indices if i < len(cells)
            ):
                cells = [_as_text(c) if i in text_indices else c for i, c in enumerate(cells)]
                row = SheetRow(row.number, cells)
            yield row
    finally:
        # A reader that stops early releases the workbook or the upload at once.
        _close(raw)


def _passed_over(cells: Sequence[Cell]) -> bool:
    """A blank row, or a total row (合计, 总计): the cells' text joined once for both."""
    joined = _joined(cells)
    if joined is not None:
        if not joined.strip():
            return True
        # Both words end in 计, and NFKC makes 计 of 计 alone (test_sheets.py): a row of text
        # without one is no total, found without normalising a cell (a third of reading a row).
        if _TOTAL_MARK not in joined:
            return False
    first = next((c for c in cells if not (isinstance(c, str) and not c.strip())), None)
    return isinstance(first, str) and normalise_header(first) in _TOTAL_ROWS


def _as_text(cell: Cell) -> Cell:
    """A number typed into an identifier column (a phone, an ID, a SKU) as the digits typed.

    Excel stores 13812345678 as the float 13812345678.0. Past 15 digits Excel itself has
    already dropped the tail (an 18-digit ID number), so such a float is left as a number for
    the row reader to report rather than returned as wrong digits.
    """
    if isinstance(cell, bool):
        return cell
    if isinstance(cell, int):
        return str(cell)
    if isinstance(cell, float) and cell.is_integer() and abs(cell) < 1e15:
        return str(int(cell))
    return cell


def _chain(first: SheetRow, rest: Iterator[SheetRow]) -> Iterator[SheetRow]:
    try:
        yield first
        yield from rest
    finally:
        _close(rest)
