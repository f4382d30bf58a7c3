"""A field's text read in one pass (a text cell NFKC leaves as it is normalised once) is what
``first`` and ``text_of`` read: the first non-blank cell's text, for every kind of cell."""

import sys
import unicodedata
from datetime import date, datetime

from customer_service.imports.cells import is_blank, text_of
from customer_service.imports.headers import recognise_headers
from customer_service.imports.rows import RowReading
from customer_service.imports.sheets import Cell, SheetRow

COLUMNS = recognise_headers(["姓名", "地址", "详细地址"], kind="customers")
PLACEHOLDERS = ["无", "暂无", "-", "--", "—", "/", "n/a", "N/A", "ｎ／ａ", "null", "NULL", "－"]


def _reference(cells: list[Cell], field: str) -> str | None:
    for column in COLUMNS.by_field[field]:
        if column.index < len(cells) and not is_blank(cells[column.index]):
            return text_of(cells[column.index])
    return None


def _cells() -> list[Cell]:
    found: list[Cell] = [0, 1.0, 2.5, True, date(2024, 5, 1), datetime(2024, 5, 1, 9), ""]
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        if 0xD800 <= code <= 0xDFFF:
            continue
        # Every character NFKC changes, spacing or combining ones, and a sample of the others.
        if not (
            code % 97 == 0
            or char.isspace()
            or unicodedata.category(char).startswith("M")
            or not unicodedata.is_normalized("NFKC", char)
        ):
            continue
        found += [char, f" {char}", f"{char}\u3000", f"{char}\u0308", f"n/a{char}"]
    for word in PLACEHOLDERS:
        found += [word, f" {word} ", f"\u3000{word}\u00a0", f"{word}\u200b"]
    return found


def test_one_pass_reads_what_first_and_text_of_read() -> None:
    for cell in _cells():
        row = [cell, cell, "文三路"]
        reading = RowReading(SheetRow(2, row), COLUMNS)
        assert reading.text("name") == _reference(row, "name"), repr(cell)
        # Blank or not, the next column of the field is read when this one is blank.
        assert reading.text("address") == _reference(row, "address"), repr(cell)
