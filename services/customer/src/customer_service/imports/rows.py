"""One spreadsheet row read into a typed candidate or into errors: what both kinds share.

Pure functions: nothing here reads the database. Errors name the row as the spreadsheet shows it,
the API field, and what is wrong, so that a store can fix its sheet and import it again. The
kinds are read by customer_rows.py and purchase_rows.py.
"""

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TypeVar
from unicodedata import is_normalized

from customer_service.imports.cells import date_of, is_blank, normalized_text, text_of
from customer_service.imports.headers import Column, Columns
from customer_service.imports.sheets import Cell, SheetRow

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RowError:
    row: int
    field: str
    message: str

    def as_dict(self) -> dict[str, int | str]:
        return {"row": self.row, "field": self.field, "message": self.message}


class RowReading:
    """The cells of one row by field, and the errors met while reading them."""

    def __init__(self, row: SheetRow, columns: Columns) -> None:
        self.row = row
        self.columns_by_field = columns.by_field
        self.errors: list[RowError] = []

    def fail(self, field: str, message: str) -> None:
        self.errors.append(RowError(self.row.number, field, message))

    def cells(self, field: str) -> list[tuple[Column, Cell]]:
        """The non-blank cells of a field's columns, in sheet order."""
        found = []
        cells = self.row.cells
        for column in self.columns_by_field.get(field, ()):
            if column.index < len(cells):
                cell = cells[column.index]
                if not is_blank(cell):
                    found.append((column, cell))
        return found

    def first(self, field: str) -> tuple[Column, Cell] | None:
        columns = self.columns_by_field.get(field)
        if columns is None:  # most fields of a sheet have no column
            return None
        cells = self.row.cells
        for column in columns:
            if column.index < len(cells):
                cell = cells[column.index]
                if not is_blank(cell):
                    return column, cell
        return None

    def value(self, field: str, parse: Callable[[Cell], T]) -> T | None:
        found = self.first(field) if field in self.columns_by_field else None
        if found is None:
            return None
        try:
            return parse(found[1])
        except ValueError as exc:
            self.fail(field, str(exc))
            return None

    def text(self, field: str) -> str | None:
        """The first non-blank cell's text (``first``, then ``text_of``), normalising a text
        cell once rather than twice."""
        columns = self.columns_by_field.get(field)
        if columns is None:
            return None
        cells = self.row.cells
        for column in columns:
            if column.index < len(cells):
                cell = cells[column.index]
                if isinstance(cell, str) and is_normalized("NFKC", cell):
                    text = normalized_text(cell)
                    if text is not None:
                        return text
                elif not is_blank(cell):
                    return text_of(cell)
        return None

    def code(
        self, field: str, to_code: Callable[[str], str | None], codes: tuple[str, ...]
    ) -> str | None:
        text = self.text(field) if field in self.columns_by_field else None
        if text is None:
            return None
        code = to_code(text)
        if code is None:
            self.fail(field, f"{text} is not one of {', '.join(codes)}")
        return code

    def date_between(self, field: str, earliest: date, latest: date) -> date | None:
        if field not in self.columns_by_field:
            return None
        value = self.value(field, date_of)
        if value is not None and not earliest <= value <= latest:
            self.fail(field, f"{value.isoformat()} is not between {earliest} and {latest}")
            return None
        return value


def fingerprint(*parts: str) -> str:
    """A short stable hash of a row's key fields."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


class RepeatedRows:
    """Keys that keep the n-th identical row of one sheet apart from the first.

    Two equal till lines (same customer, day, product, quantity and amount) are two purchases:
    the second gets `fingerprint#2`, and importing the sheet again gives the same keys again.
    """

    def __init__(self) -> None:
        self._seen: Counter[str] = Counter()

    def key(self, fingerprint: str) -> str:
        self._seen[fingerprint] += 1
        count = self._seen[fingerprint]
        return fingerprint if count == 1 else f"{fingerprint}#{count}"
