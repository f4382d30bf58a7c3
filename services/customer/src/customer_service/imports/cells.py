"""One cell's value as the type its field needs, in the forms Chinese spreadsheets hold.

Each parser returns the value or raises ValueError with a message for the user.
"""

import re
import unicodedata
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from customer_service.imports.sheets import Cell

# What people type into a cell that has nothing to say.
_PLACEHOLDERS = frozenset(
    {"无", "暂无", "没有", "未知", "不详", "-", "--", "—", "/", "n/a", "null"}
)


def is_blank(cell: Cell) -> bool:
    """An empty cell, or one holding only a placeholder such as 无 or -."""
    if not isinstance(cell, str):
        return False
    text = cell.strip()
    return not text or unicodedata.normalize("NFKC", text).casefold() in _PLACEHOLDERS


def normalized_text(cell: str) -> str | None:
    """``is_blank`` and ``text_of`` in one for a text cell NFKC leaves as it is (most cells; check
    with ``unicodedata.is_normalized``): trimmed, it is normalised too, so both read the same
    stripped text; None if that is blank."""
    text = cell.strip()
    return None if not text or text.casefold() in _PLACEHOLDERS else text


def text_of(cell: Cell) -> str | None:
    """The cell as trimmed NFKC text (full-width letters and digits made plain); None if blank."""
    if isinstance(cell, str):
        text = unicodedata.normalize("NFKC", cell).strip()
    elif isinstance(cell, float) and cell.is_integer():
        text = str(int(cell))
    else:
        text = str(cell)
    if not text or text.casefold() in _PLACEHOLDERS:
        return None
    return text


_CJK_GAP = re.compile(r"(?<=[\u3400-\u9fff\uf900-\ufaff])\s+(?=[\u3400-\u9fff\uf900-\ufaff])")
_SPACES = re.compile(r"\s+")


def clean_name(text: str) -> str:
    """A person's name: 「王　五」 padded with a full-width space to align a column is 王五."""
    if text.isalpha():  # no space in it (most names): neither pattern would change it
        return text
    return _SPACES.sub(" ", _CJK_GAP.sub("", text))


# ---- dates ---------------------------------------------------------------------------------

_DATE_TEXT = re.compile(
    r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
    r"(?:[\sT]+(\d{1,2})[:时](\d{1,2})(?:[:分](\d{1,2})(?:\.\d+)?秒?)?)?"
)
_COMPACT_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")
_SERIAL = re.compile(r"\d{1,5}(?:\.\d+)?")
_YEAR_ONLY = re.compile(r"(19|20)\d{2}(?:\s*年)?")
_EXCEL_EPOCH = date(1899, 12, 30)


def excel_serial(serial: float) -> date | datetime:
    """An Excel date serial (1900 system): a date, or a datetime when it has a time of day."""
    whole = int(serial)
    if whole < 1:
        raise ValueError(f"{serial:g} is not a date")
    if whole == 60:
        raise ValueError("Excel's 1900-02-29 is not a date")
    # Excel counts a 29 February 1900 that never was: serials before it are one day later.
    day = _EXCEL_EPOCH + timedelta(days=whole + (1 if whole < 60 else 0))
    seconds = round((serial - whole) * 86400)
    if seconds == 0:
        return day
    return datetime.combine(day, time()) + timedelta(seconds=seconds)


def when_of(cell: Cell) -> date | datetime:
    """A date or a date and time: a date cell, an Excel serial, or text such as 1956-03-08,
    1956/3/8, 1956.3.8, 1956年3月8日, 19560308, or 2024/5/6 14:30."""
    if isinstance(cell, str) and len(cell) == 10 and cell[4] == "-" == cell[7]:
        # Typed as 1956-03-08 (most text dates): read as ISO, which takes ASCII digits only,
        # so exactly the dates the pattern below reads from such a cell; else the pattern.
        try:
            return date.fromisoformat(cell)
        except ValueError:
            pass
    if isinstance(cell, datetime | date):
        return cell
    if isinstance(cell, time | timedelta):
        raise ValueError("a time of day without a date")
    if isinstance(cell, bool):
        raise ValueError("not a date")
    if isinstance(cell, int | float):
        return excel_serial(cell)
    return _when_of_text(unicodedata.normalize("NFKC", cell).strip())


def _when_of_text(text: str) -> date | datetime:
    if match := _DATE_TEXT.fullmatch(text):
        y, m, d, hh, mm, ss = match.groups()
        try:
            # Excel writes a date-only cell to CSV as 1956-03-08 00:00:00.
            if hh is None or int(hh) == int(mm) == int(ss or 0) == 0:
                return date(int(y), int(m), int(d))
            return datetime(int(y), int(m), int(d), int(hh), int(mm), int(ss or 0))
        except ValueError:
            raise ValueError(f"{text} is not a date") from None
    if match := _COMPACT_DATE.fullmatch(text):
        try:
            return date(*(int(part) for part in match.groups()))
        except ValueError:
            raise ValueError(f"{text} is not a date") from None
    if _YEAR_ONLY.fullmatch(text):
        raise ValueError(f"{text} is a year without a month and day")
    if _SERIAL.fullmatch(text):
        return excel_serial(float(text))
    raise ValueError(f"{text} is not a date: write it as 1956-03-08")


_TIME_TEXT = re.compile(r"(\d{1,2})[:时](\d{1,2})(?:[:分](\d{1,2})(?:\.\d+)?秒?)?")


def time_of(cell: Cell) -> time | None:
    """A time of day (a time cell, or text such as 14:30 or 14:30:05); None for anything else."""
    if isinstance(cell, time):
        return cell
    if not isinstance(cell, str):
        return None
    match = _TIME_TEXT.fullmatch(unicodedata.normalize("NFKC", cell).strip())
    if match is None:
        return None
    hour, minute, second = match.groups()
    try:
        return time(int(hour), int(minute), int(second or 0))
    except ValueError:
        return None


def date_of(cell: Cell) -> date:
    """A calendar date; a time of day in the cell is dropped."""
    when = when_of(cell)
    return when.date() if isinstance(when, datetime) else when


# ---- numbers -------------------------------------------------------------------------------

_MONEY_NOISE = re.compile(r"[¥,\s]|元|rmb|cny", re.IGNORECASE)
_UNIT = re.compile(r"\s*(?:盒|瓶|件|个|袋|支|罐|箱|套|岁)$")


def _decimal(cell: Cell, noise: re.Pattern[str]) -> Decimal:
    if isinstance(cell, bool) or not isinstance(cell, int | float | str):
        raise ValueError("not a number")
    if isinstance(cell, float):
        # repr is the shortest text that reads back as the same float: 12.3, not 12.2999…
        value = Decimal(repr(cell))
    elif isinstance(cell, int):
        value = Decimal(cell)
    else:
        text = noise.sub("", unicodedata.normalize("NFKC", cell))
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"{cell.strip()} is not a number") from None
    if not value.is_finite():
        raise ValueError("not a number")
    return value


def amount_of(cell: Cell) -> Decimal:
    """Money with two places; ¥, 元 and thousands separators are allowed."""
    # Where money is read: customer_service.money loads pydantic, which a customers sheet's
    # row-check processes otherwise do without.
    from customer_service.money import to_cents

    value = _decimal(cell, _MONEY_NOISE)
    if value < 0:
        raise ValueError("an amount cannot be negative")
    if value >= Decimal("1e10"):
        raise ValueError("the amount is too large")
    return to_cents(value)


def whole_number_of(cell: Cell) -> int:
    """A count such as boxes (2, 2.0, 2盒) or years of age (65岁)."""
    value = _decimal(cell, _UNIT)
    if value != value.to_integral_value():
        raise ValueError(f"{value} is not a whole number")
    return int(value)


# ---- identifiers ---------------------------------------------------------------------------

_SCIENTIFIC = re.compile(r"\d(?:\.(\d+))?e\+?(\d+)", re.IGNORECASE)
_PHONE_SEPARATORS = re.compile(r"[/,;、|]+")
_NOT_DIGITS = re.compile(r"\D")


def identifier_of(cell: Cell) -> str | None:
    """Digits or letters that name something (a phone, an ID number, a SKU), as text.

    A number with more than 15 digits, or one shown in scientific notation with fewer digits
    than it stands for, has already lost digits in Excel: saying so beats storing wrong digits.
    """
    if isinstance(cell, bool):
        raise ValueError("not an identifier")
    if isinstance(cell, int):
        return str(cell)
    if isinstance(cell, float):
        if cell.is_integer() and abs(cell) < 1e15:
            return str(int(cell))
        raise ValueError(
            "the number was stored as a number and lost digits: format the column as text and "
            "type it again"
        )
    text = text_of(cell)
    if text is None:
        return None
    # Scientific notation has its e (most identifiers are digits alone).
    if ("e" in text or "E" in text) and (match := _SCIENTIFIC.fullmatch(text)):
        fraction, exponent = match.group(1) or "", int(match.group(2))
        if len(fraction) < exponent:
            raise ValueError(
                f"{text} is in scientific notation and lost digits: format the column as text "
                "and type the number again"
            )
        return str(int(Decimal(text)))
    return text


def phone_texts(cell: Cell) -> list[str]:
    """The numbers in a phone cell, as text: one cell may hold 「138…/0571-…」.

    Normalising them is the customer service's phone rules' job, not the reader's.
    """
    text = identifier_of(cell)
    if text is None:
        return []
    if text.isdecimal() and len(text) >= 5:
        return [text]  # one number of digits alone (most cells): nothing to split or count
    return _numbers_in(text)


def _numbers_in(text: str) -> list[str]:
    numbers = [part.strip() for part in _PHONE_SEPARATORS.split(text)]
    numbers = [n for n in numbers if n and n.casefold() not in _PLACEHOLDERS]
    for number in numbers:
        if len(_NOT_DIGITS.sub("", number)) < 5:
            raise ValueError(f"{number} is not a phone number")
    return numbers


def phone_key(number: str) -> str:
    """The digits of a phone, less a +86 prefix: only to tell repeated rows apart."""
    digits = number if number.isdecimal() else _NOT_DIGITS.sub("", number)
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits
