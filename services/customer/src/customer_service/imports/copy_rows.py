"""Rows in PostgreSQL's binary COPY format, encoded where the rows are checked.

A chunk's files were sent with asyncpg's ``copy_records_to_table``, which encodes each value of
each record on the event loop that writes the chunks, between the chunk's statements: a fifth
of the writer's own time, and the records crossed from the row-check processes as tuples that
the service unpickled value by value. Each row is now encoded in those processes, as the bytes
of one tuple of the format (``RowFormat``); writing a chunk joins the bytes of the rows it
keeps and sends them with ``copy_to_table(format="binary")``. The server reads the same format
asyncpg sends: every value in its type's binary form, which the encoders here must match
exactly (a test copies the same rows both ways and compares them).

The format (PostgreSQL's "COPY" page, "Binary Format"): a header, then per tuple a 16-bit
count of fields and per field a 32-bit length (-1 for NULL) and the value's bytes, then a
16-bit -1.
"""

import struct
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from typing import Any

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
TRAILER = struct.pack("!h", -1)

_NULL = struct.pack("!i", -1)
_LENGTH = struct.Struct("!i")
_INT4 = struct.Struct("!ii")  # length 4, value
_ARRAY = struct.Struct("!iiiiii")  # length, dimensions, has nulls, element type, size, lower bound
_EMPTY_TEXT_ARRAY = struct.pack("!iiii", 12, 0, 0, 25)
_TEXT_OID = 25
_COUNT = struct.Struct("!h")
_TRUE, _FALSE = struct.pack("!ib", 1, 1), struct.pack("!ib", 1, 0)
_JSONB_VERSION = b"\x01"
_POSTGRES_EPOCH = date(2000, 1, 1).toordinal()

Encoder = Callable[[Any], bytes]


def text(value: str) -> bytes:
    """``text`` and ``varchar``: the UTF-8 bytes."""
    data = value.encode()
    return _LENGTH.pack(len(data)) + data


def integer(value: int) -> bytes:
    """``integer`` (int4)."""
    return _INT4.pack(4, value)


def day(value: date) -> bytes:
    """``date``: days since 2000-01-01."""
    return _INT4.pack(4, value.toordinal() - _POSTGRES_EPOCH)


def jsonb(value: str) -> bytes:
    """``jsonb`` from its JSON text: a version byte, then the text."""
    data = value.encode()
    return _LENGTH.pack(len(data) + 1) + _JSONB_VERSION + data


def boolean(value: bool) -> bytes:
    """``boolean``: one byte, 1 or 0."""
    return _TRUE if value else _FALSE


def field_count(count: int) -> bytes:
    """A tuple's leading count of fields."""
    return _COUNT.pack(count)


def text_array(values: Sequence[str]) -> bytes:
    """``text[]`` of one dimension, without NULLs (an empty list is the empty array)."""
    if not values:
        return _EMPTY_TEXT_ARRAY
    items = b"".join(text(v) for v in values)
    return _ARRAY.pack(20 + len(items), 1, 0, _TEXT_OID, len(values), 1) + items


class RowFormat:
    """Encodes a record (its values in the COPY's column order) as one tuple of the format,
    None as NULL."""

    def __init__(self, encoders: Sequence[Encoder]) -> None:
        self._count = field_count(len(encoders))
        self._encoders = tuple(enumerate(encoders))

    def __call__(self, values: Sequence[Any]) -> bytes:
        return self._count + b"".join(
            _NULL if (value := values[i]) is None else encode(value) for i, encode in self._encoders
        )


def copy_data(rows: Iterable[bytes]) -> bytes:
    """The whole COPY's data: the header, the tuples, the trailer."""
    return b"".join((HEADER, *rows, TRAILER))


async def once(data: bytes) -> Any:
    """``data`` as the asynchronous iterable ``copy_to_table`` reads a source from (bytes
    themselves it takes for a path)."""
    yield data


def fields_of(row: bytes) -> list[bytes | None]:
    """The raw value of each field of one encoded tuple (NULL as None): to read a row back."""
    (count,) = struct.unpack_from("!h", row)
    at = 2
    fields: list[bytes | None] = []
    for _ in range(count):
        (length,) = _LENGTH.unpack_from(row, at)
        at += 4
        if length < 0:
            fields.append(None)
            continue
        fields.append(row[at : at + length])
        at += length
    return fields
