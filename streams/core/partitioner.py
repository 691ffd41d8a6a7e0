"""Kafka's default partitioner: ``murmur2(key) & 0x7fffffff % partitions``.

The embedded broker and every sink use this, so a key lands on the same partition number
in-process as it does on a real Kafka cluster (and co-partitioned topics line up).

>>> murmur2(b"21")
-973932308
>>> partition_for(b"foobar", 12)
6
"""

from __future__ import annotations

import struct

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_U32 = struct.Struct("<I")


def murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2`` (a signed 32-bit result, like Java's int)."""
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    n4 = length & ~3
    for (k,) in struct.iter_unpack("<I", data[:n4]):
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length & 3
    if rest == 3:
        h ^= data[n4 + 2] << 16
    if rest >= 2:
        h ^= data[n4 + 1] << 8
    if rest >= 1:
        h ^= data[n4]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


class Partitioner:
    """Maps serialized keys to partitions, memoizing hot keys (keys repeat a lot in streams).

    >>> Partitioner().partition(b"foobar", 12)
    6
    """

    __slots__ = ("_cache", "_limit")

    def __init__(self, cache_size: int = 100_000) -> None:
        self._cache: dict[bytes, int] = {}
        self._limit = cache_size

    def partition(self, key: bytes, partitions: int) -> int:
        h = self._cache.get(key)
        if h is None:
            h = murmur2(key) & 0x7FFFFFFF
            if len(self._cache) >= self._limit:
                self._cache.clear()  # cheap reset; a full LRU costs more than it saves here
            self._cache[key] = h
        return h % partitions


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for a non-null key."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


__all__ = ["Partitioner", "murmur2", "partition_for"]
