"""Time-ordered identifiers, so keyset pagination by id follows creation order."""

from __future__ import annotations

import os
import time

_MILLIS = (1 << 48) - 1


def new_id() -> str:
    """A UUIDv7 string: 48 bits of Unix milliseconds, then random bits.

    Written from the bytes rather than through ``uuid.UUID`` (an integer assembled, then
    formatted by Python code): a spreadsheet import makes one per row."""
    raw = bytearray((time.time_ns() // 1_000_000 & _MILLIS).to_bytes(6, "big") + os.urandom(10))
    raw[6] = 0x70 | raw[6] & 0x0F  # version 7, then 12 random bits
    raw[8] = 0x80 | raw[8] & 0x3F  # RFC 4122 variant, then 62 random bits
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
