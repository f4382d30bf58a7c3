"""The ids a chunk of imported rows needs: each file's id (a UUIDv7, as ``crm_libs.ids.new_id``
writes it) and its registration event's id (a UUIDv4), their random bits read from the kernel
once per chunk rather than twice per row.

Each read of ``os.urandom`` is a system call, dearer than formatting the id it feeds (two per row
were about 2 µs of a row's checks). The bits are read when a chunk's checks begin and used by
that call alone: nothing is kept from one chunk to the next, so no two processes, forked or
not, can hand out the same bits, and no other thread shares them.
"""

import os
import time

_MILLIS = (1 << 48) - 1
# Hex characters per id's random part: 10 bytes of a UUIDv7, 16 of a UUIDv4.
_FILE_ID_HEX = 20
_EVENT_ID_HEX = 32
# The RFC 4122 variant in the high bits of a hex digit (10xx): 8, 9, a or b, keeping the two low
# bits drawn.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


class RowIds:
    """A file id and an event id for each of ``rows`` rows (more are read if more are asked)."""

    __slots__ = ("_random", "_at", "_rows", "_millis", "_time_part")

    def __init__(self, rows: int) -> None:
        self._rows = max(rows, 1)
        self._random = ""
        self._at = 0
        # The milliseconds of the last file id, and its text up to the version (a millisecond
        # sees a dozen rows checked).
        self._millis = -1
        self._time_part = ""

    def _take(self, digits: int) -> str:
        at, end = self._at, self._at + digits
        if end > len(self._random):
            self._random = os.urandom((_FILE_ID_HEX + _EVENT_ID_HEX) // 2 * self._rows).hex()
            at, end = 0, digits
        self._at = end
        return self._random[at:end]

    def file_id(self) -> str:
        """A UUIDv7: 48 bits of Unix milliseconds now, version 7, 74 random bits."""
        r = self._take(_FILE_ID_HEX)
        millis = time.time_ns() // 1_000_000 & _MILLIS
        if millis != self._millis:
            ms = f"{millis:012x}"
            self._millis, self._time_part = millis, f"{ms[:8]}-{ms[8:]}-7"
        return f"{self._time_part}{r[1:4]}-{_VARIANT[r[4]]}{r[5:8]}-{r[8:]}"

    def event_id(self) -> str:
        """A UUIDv4: ``str(uuid.uuid4())``, 122 random bits."""
        r = self._take(_EVENT_ID_HEX)
        return f"{r[:8]}-{r[8:12]}-4{r[13:16]}-{_VARIANT[r[16]]}{r[17:20]}-{r[20:]}"
