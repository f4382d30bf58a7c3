"""The shorter ways a row's cells are read (a name without spaces, a date typed 1956-03-08, a
phone cell of digits alone, a birthday without L or 闰) give what the general reading gives,
value or refusal, over every character that could make them differ."""

import re
import sys
import unicodedata
from collections.abc import Callable
from datetime import date, timedelta

from customer_service.imports import cells, customer_rows

Outcome = tuple[str, object]


def _outcome(read: Callable[[], object]) -> Outcome:
    try:
        return "value", read()
    except ValueError as exc:
        return "refused", str(exc)


def _characters() -> list[str]:
    """Every space, digit, mark and character NFKC changes, and a sample of the others."""
    found = []
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        if 0xD800 <= code <= 0xDFFF:
            continue
        if (
            code % 251 == 0
            or char.isspace()
            or char.isdecimal()
            or unicodedata.category(char).startswith("M")
            or not unicodedata.is_normalized("NFKC", char)
        ):
            found.append(char)
    return found + list("-/.年月日LlTe:")


CHARACTERS = _characters()


def test_a_name_without_spaces_is_cleaned_and_fingerprinted_as_any_name() -> None:
    for char in CHARACTERS:
        for name in (char, f"王{char}五", f"{char}王五", f"王五{char}", f"John{char}Smith"):
            general = cells._SPACES.sub(" ", cells._CJK_GAP.sub("", name))
            assert cells.clean_name(name) == general, repr(name)
            key = re.sub(r"\s", "", name).casefold()
            assert customer_rows._fingerprint_name(name) == key, repr(name)


def _dates() -> list[str]:
    texts = []
    day = date(1899, 12, 25)
    while day < date(2031, 1, 10):
        texts.append(day.isoformat())
        day += timedelta(days=4999)
    texts += ["1956-02-29", "1956-02-30", "1956-13-01", "1956-00-10", "1956-01-00", "0000-01-01"]
    return texts + ["2023-W01-1", "2023-W011", "1956-3-08 ", "+956-03-08", "1956/03/08"]


def test_a_date_typed_as_iso_reads_as_the_date_pattern_reads_it() -> None:
    """Each place of a ten-character date, one at a time, takes each character: what
    ``when_of`` reads of the cell (its shortcut when the cell looks like 1956-03-08) is what
    the general reading of its NFKC text gives, date or refusal and its message; and the ISO
    reading the shortcut tries takes no character but an ASCII digit at a digit's place."""
    compared = shortcut = 0
    for text in _dates():
        for place in range(len(text)):
            for char in CHARACTERS[::10]:
                cell = text[:place] + char + text[place + 1 :]
                general = _outcome(
                    lambda c=cell: cells._when_of_text(unicodedata.normalize("NFKC", c).strip())
                )
                assert _outcome(lambda c=cell: cells.when_of(c)) == general, repr(cell)
                compared += 1
                shortcut += len(cell) == 10 and cell[4] == "-" == cell[7]
    assert compared > 250_000 and shortcut > 150_000
    taken = 0
    for place in (0, 1, 2, 3, 5, 6, 8, 9):
        for char in CHARACTERS:
            cell = "1956-03-08"[:place] + char + "1956-03-08"[place + 1 :]
            if _outcome(lambda c=cell: date.fromisoformat(c))[0] == "value":
                assert char in "0123456789", repr(cell)
                taken += 1
    assert taken > 30


def test_a_phone_cell_of_digits_alone_reads_as_any_phone_cell() -> None:
    """A cell of decimal digits (of any script, full-width too) is one number without splitting
    or counting: what the general reading finds in its text, the numbers or the refusal."""
    cells_seen = 0
    for char in CHARACTERS:
        for body in ("", "1234", "13812345678"):
            for cell in (body + char, char + body, body + char * 5, f"{body}{char}5678"):
                text = _outcome(lambda c=cell: cells.identifier_of(c))
                if text[0] != "value" or text[1] is None:
                    continue
                general = _outcome(lambda t=text[1]: cells._numbers_in(t))  # type: ignore[arg-type]
                assert _outcome(lambda c=cell: cells.phone_texts(c)) == general, repr(cell)
                key = cells._NOT_DIGITS.sub("", cell)
                key = key[4:] if key.startswith("0086") else key
                key = key[2:] if key.startswith("86") and len(key) == 13 else key
                assert cells.phone_key(cell) == key, repr(cell)
                cells_seen += 1
    assert cells_seen > 60_000


def test_only_an_e_makes_scientific_notation_and_only_an_l_or_闰_a_leap_month() -> None:
    """The patterns these readings skip cannot match without the letter they test for: no
    other character matches e (or L) ignoring case, and the leap month's L or 闰 is required."""
    every = [chr(code) for code in range(sys.maxunicode + 1)]
    e_like = list(filter(re.compile("e", re.IGNORECASE).fullmatch, every))
    l_like = list(filter(re.compile("L", re.IGNORECASE).fullmatch, every))
    assert (e_like, l_like) == (["E", "e"], ["L", "l"])
    assert cells._SCIENTIFIC.flags & re.IGNORECASE and "e" in cells._SCIENTIFIC.pattern
    for cell in ("1944-04-04", "1944 04 04", "1944年4月4日", "1944-4-4 "):
        assert customer_rows._LEAP_MONTH.fullmatch(cell) is None
        assert not customer_rows._may_be_leap(cell)
    for cell in ("1944-L04-04", "1944-l04-04", "1944年闰4月4日"):
        assert customer_rows._LEAP_MONTH.fullmatch(cell) and customer_rows._may_be_leap(cell)
