"""Real XLSX files for the import tests, written the way Excel stores cells."""

import io
from collections.abc import Callable, Sequence
from datetime import date, datetime

import pytest
import xlsxwriter

Rows = Sequence[Sequence[object]]
WriteXlsx = Callable[..., bytes]


def write_xlsx(
    sheets: dict[str, Rows], *, hidden: Sequence[str] = (), constant_memory: bool = False
) -> bytes:
    """A workbook with one sheet per entry: numbers stored as numbers, dates as date cells.

    A `None` cell is left empty.
    """
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(
        buffer, {"in_memory": not constant_memory, "constant_memory": constant_memory}
    )
    date_format = workbook.add_format({"num_format": "yyyy/m/d"})
    time_format = workbook.add_format({"num_format": "yyyy/m/d hh:mm"})
    for name, rows in sheets.items():
        sheet = workbook.add_worksheet(name)
        if name in hidden:
            sheet.hide()
        elif not any(s.hidden == 0 for s in workbook.worksheets()[:-1]):
            sheet.activate()  # the active sheet cannot be hidden
        for r, row in enumerate(rows):
            for c, cell in enumerate(row):
                if cell is None:
                    continue
                if isinstance(cell, datetime):
                    sheet.write_datetime(r, c, cell, time_format)
                elif isinstance(cell, date):
                    sheet.write_datetime(r, c, cell, date_format)
                elif isinstance(cell, bool):
                    sheet.write_boolean(r, c, cell)
                elif isinstance(cell, int | float):
                    sheet.write_number(r, c, cell)
                else:
                    sheet.write_string(r, c, str(cell))
    workbook.close()
    return buffer.getvalue()


@pytest.fixture
def xlsx() -> WriteXlsx:
    return write_xlsx
