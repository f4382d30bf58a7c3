"""The relay's partitioning gives a key the partition Kafka's default partitioner gives it."""

import random
import uuid

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from crm_libs.events.partitions import murmur2, partition_of, partitions_of


def _keys() -> list[bytes]:
    rng = random.Random(8)
    keys = [str(uuid.UUID(int=rng.getrandbits(128))).encode() for _ in range(5000)]
    # Every tail length (0-3 bytes past whole words), empty included, and bytes above 0x7f.
    keys += [rng.randbytes(n) for n in range(0, 70) for _ in range(40)]
    keys += [b"\xff" * n for n in range(12)] + ["顾客-张三".encode(), b"c1", b"s-window"]
    return keys


def test_murmur2_equals_aiokafkas_over_many_keys() -> None:
    for key in _keys():
        assert murmur2(key) == aiokafka_murmur2(key), key


def test_partition_equals_the_default_partitioners() -> None:
    default = DefaultPartitioner()
    for count in (1, 2, 3, 6, 12, 50):
        partitions = list(range(count))
        for key in _keys()[::7]:
            assert partition_of(key, partitions) == default(key, partitions, partitions)


def test_known_values_of_kafkas_murmur2() -> None:
    # From the Java client's UtilsTest.testMurmur2: the signed 32-bit results, as unsigned.
    cases = {
        b"21": -973932308,
        b"foobar": -790332482,
        b"a-little-bit-long-string": -985981536,
        b"a-little-bit-longer-string": -1486304829,
        b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
        b"abc": 479470107,
    }
    for key, signed in cases.items():
        assert murmur2(key) == signed & 0xFFFFFFFF, key


def test_keys_hashed_together_get_the_partition_each_gets_alone() -> None:
    keys = _keys()
    random.Random(3).shuffle(keys)  # lengths mixed, as a claim's rows may mix them
    for count in (1, 12, 50):
        partitions = [p * 10 for p in range(count)]  # ids, not positions
        together = partitions_of(keys, partitions)
        assert together == [partition_of(key, partitions) for key in keys]
    # Many keys of each tail length and of a customer id's length go through the columns.
    assert sum(len(k) == 36 for k in keys) >= 5000
    assert partitions_of([], [0, 1]) == []
