"""The partition Kafka's default partitioner gives a key, computed for less.

The relay partitions every row it sends (a customer's events stay in order on one partition),
and aiokafka's ``murmur2`` walks the key a byte at a time with a mask after each operation:
about 5.6 µs for a customer id, more than the rest of what the relay does with the row. This is
the same hash (Kafka's ``Utils.murmur2``) over the key's 4-byte little-endian words, unpacked at
once, masking only where a product can pass 32 bits.

A batch row's thousand customers still cost 3-4.5 µs each that way, which was nearly all of the
relay's own Python during an import: ``partitions_of`` hashes keys of one length together, as
columns of 32-bit words in numpy, whose unsigned arithmetic wraps at 32 bits as the hash's does
(0.1 µs a key).
"""

from __future__ import annotations

import struct
from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np

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


# Below this many keys of one length the per-key loop is as quick as setting up the arrays.
_VECTOR_FROM = 16
_M32 = np.uint32(_M)


def partitions_of(keys: Sequence[bytes], partitions: Sequence[int]) -> list[int]:
    """``partition_of`` of each key, in order: keys of one length hashed together."""
    by_length: defaultdict[int, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        by_length[len(key)].append(i)
    found = [0] * len(keys)
    for length, places in by_length.items():
        if len(places) < _VECTOR_FROM:
            for i in places:
                found[i] = partition_of(keys[i], partitions)
            continue
        hashes = _murmur2_columns([keys[i] for i in places], length)
        chosen = ((hashes & np.uint32(0x7FFFFFFF)) % np.uint32(len(partitions))).tolist()
        for i, index in zip(places, chosen, strict=True):
            found[i] = partitions[index]
    return found


def _murmur2_columns(keys: Sequence[bytes], length: int) -> np.ndarray:
    """``murmur2`` of keys all ``length`` bytes long, as a uint32 array: each step of the hash
    applied to one word of every key at once (products wrap at 32 bits, as the mask does)."""
    grid = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), length)
    words = length >> 2
    whole = np.ascontiguousarray(grid[:, : words * 4]).view("<u4").astype(np.uint32)
    h = np.full(len(keys), _SEED ^ length, dtype=np.uint32)
    for j in range(words):
        k = whole[:, j] * _M32
        k ^= k >> np.uint32(24)
        k *= _M32
        h *= _M32
        h ^= k
    extra = length & 3
    if extra:
        tail = grid[:, words * 4 :].astype(np.uint32)
        if extra == 3:
            h ^= tail[:, 2] << np.uint32(16)
        if extra >= 2:
            h ^= tail[:, 1] << np.uint32(8)
        h ^= tail[:, 0]
        h *= _M32
    h ^= h >> np.uint32(13)
    h *= _M32
    h ^= h >> np.uint32(15)
    return h
