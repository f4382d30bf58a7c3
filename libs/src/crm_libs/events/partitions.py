"""The partition Kafka's default partitioner gives a key, computed for less.

The relay partitions every row it sends (a customer's events stay in order on one partition),
and aiokafka's ``murmur2`` walks the key a byte at a time with a mask after each operation:
about 5.6 µs for a customer id, more than the rest of what the relay does with the row. This is
the same hash (Kafka's ``Utils.murmur2``) over the key's 4-byte little-endian words, unpacked at
once, masking only where a product can pass 32 bits.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF

# One unpacker per number of whole words (a customer id always has the same length).
_UNPACKERS: dict[int, Callable[[bytes], tuple[int, ...]]] = {}


def murmur2(key: bytes) -> int:
    """Kafka's murmur2 of ``key`` (the unsigned 32-bit value aiokafka's ``murmur2`` returns)."""
    length = len(key)
    words = length >> 2
    unpack = _UNPACKERS.get(words)
    if unpack is None:
        unpack = _UNPACKERS[words] = struct.Struct(f"<{words}I").unpack_from
    h = _SEED ^ length
    for k in unpack(key):
        k = (k * _M) & _MASK
        k = ((k ^ (k >> 24)) * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    extra = length & 3
    if extra:
        tail = length - extra
        if extra == 3:
            h ^= key[tail + 2] << 16
        if extra >= 2:
            h ^= key[tail + 1] << 8
        h = ((h ^ key[tail]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def partition_of(key: bytes, partitions: Sequence[int]) -> int:
    """The partition of ``partitions`` (sorted by id) that Kafka's default partitioner, Java's
    or aiokafka's, gives a keyed record."""
    return partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]
