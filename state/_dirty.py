"""The write-back cache's storage: a dict of dirty raw keys plus a sorted key index built lazily.

Puts cost a dict write; the sorted index is only brought up to date when a range scan needs it,
with one bulk sort of the keys added since, so stores that never scan never pay for ordering.

>>> m = DirtyMap()
>>> m.set(b"b", b"2"); m.set(b"a", None); m.set(b"c", b"3")
>>> m.scan(b"a", b"c", False)
[(b'a', None), (b'b', b'2')]
>>> m.sorted_items()
[(b'a', None), (b'b', b'2'), (b'c', b'3')]
"""

from __future__ import annotations

from collections.abc import Iterable

from state._sorted import SortedKeys, new_sorted_keys

_ABSENT = object()


class DirtyMap:
    """Latest value per dirty raw key (``None``: tombstone), with ordered range reads."""

    __slots__ = ("_index", "_new", "data")

    def __init__(self) -> None:
        self.data: dict[bytes, bytes | None] = {}
        self._index: SortedKeys | None = None  # built on the first scan
        self._new: set[bytes] = set()  # keys not yet in the index

    def __len__(self) -> int:
        return len(self.data)

    def set(self, key: bytes, value: bytes | None) -> None:
        """Record the latest value (or tombstone) of ``key``."""
        data = self.data
        if key not in data:
            self._new.add(key)
        data[key] = value

    def set_many(self, keys: list[bytes], values: Iterable[bytes | None]) -> None:
        """:meth:`set` of each key to its value, in bulk (a commit's or a close's writes)."""
        data = self.data
        self._new.update([k for k in keys if k not in data])
        data.update(zip(keys, values, strict=False))  # (values may be itertools.repeat)

    def discard(self, key: bytes) -> None:
        """Forget ``key`` altogether (not a tombstone: for a key the backend never had)."""
        if self.data.pop(key, _ABSENT) is _ABSENT:
            return
        if key in self._new:
            self._new.discard(key)
        elif self._index is not None:
            self._index.remove(key)

    def merge_from(self, newer: DirtyMap) -> None:
        """Overlay every entry of ``newer`` onto this map."""
        for key, value in newer.data.items():
            self.set(key, value)

    def scan(
        self, lo: bytes | None, hi: bytes | None, reverse: bool
    ) -> list[tuple[bytes, bytes | None]]:
        """A snapshot of the entries with ``lo <= key < hi``, in key order."""
        if not self.data:
            return []
        index = self._index
        if index is None:
            index = self._index = new_sorted_keys()
        if self._new:
            index.update(self._new)
            self._new = set()
        data = self.data
        return [(k, data[k]) for k in index.irange(lo, hi, (True, False), reverse)]

    def sorted_items(self) -> list[tuple[bytes, bytes | None]]:
        """Every entry in key order."""
        return sorted(self.data.items())
