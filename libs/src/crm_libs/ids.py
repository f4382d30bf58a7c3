"""Time-ordered identifiers, so keyset pagination by id follows creation order."""

from __future__ import annotations

import os
import threading
import time

_MILLIS = (1 << 48) - 1
# The 12 bits after the milliseconds hold the fraction of the millisecond (RFC 9562's
# "increased clock precision"), so that ids made within one millisecond still follow each
# other: with random bits there, two ledger entries written in the same millisecond listed in
# either order. An id never repeats or goes back the previous one in this process.
_FRACTIONS = 1 << 12
_last = 0
_lock = threading.Lock()


def _next_stamp() -> int:
    """Milliseconds and the millisecond's fraction, above the last stamp given."""
    global _last
    now = time.time_ns()
    stamp = (now // 1_000_000 & _MILLIS) * _FRACTIONS + now % 1_000_000 * _FRACTIONS // 1_000_000
    with _lock:
        stamp = _last = max(stamp, _last + 1)
    return stamp


def new_id() -> str:
    """A UUIDv7 string: 48 bits of Unix milliseconds, 12 of the millisecond's fraction, then
    random bits.

    Written from the bytes rather than through ``uuid.UUID`` (an integer assembled, then
    formatted by Python code): a spreadsheet import makes one per row."""
    stamp = _next_stamp()
    raw = bytearray((stamp >> 12).to_bytes(6, "big") + os.urandom(10))
    raw[6] = 0x70 | (stamp >> 8) & 0x0F  # version 7, then the fraction's 12 bits
    raw[7] = stamp & 0xFF
    raw[8] = 0x80 | raw[8] & 0x3F  # RFC 4122 variant, then 62 random bits
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
