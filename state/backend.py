"""Backends: ordered bytes key-value maps with atomic batch writes and a side table of metadata.

A store partition owns one backend. ``write`` applies puts, deletes and metadata (changelog and
source offsets) atomically, so a crash never leaves data and offsets disagreeing.

>>> b = open_backend("memory", None)
>>> b.write([(b"a", b"1"), (b"b", b"2"), (b"a", None)], meta={"changelog-offset": b"7"})
>>> list(b.iter_range(None, None)), b.read_meta("changelog-offset")
([(b'b', b'2')], b'7')
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from typing import Protocol, runtime_checkable

from state._sorted import SortedMap, new_sorted_map
from state.encoding import prefix_end
from state.rocks import RocksDBBackend
from streams.core.errors import StateError
from streams.core.policies import StateBackend

Op = tuple[bytes, bytes | None]
"""A raw backend operation: ``(key, value)`` puts, ``(key, None)`` deletes."""


@runtime_checkable
class Backend(Protocol):
    """An ordered bytes -> bytes map with atomic batch writes (data and metadata together)."""

    @property
    def path(self) -> str | None:
        """Where the data lives on disk (None: in memory)."""
        ...

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key``, or None."""
        ...

    def write(self, ops: Iterable[Op], meta: Mapping[str, bytes] | None = None) -> None:
        """Atomically apply ``ops`` in order and store the ``meta`` entries."""
        ...

    def read_meta(self, name: str) -> bytes | None:
        """A metadata entry stored by :meth:`write`, or None."""
        ...

    def iter_range(
        self, lo: bytes | None, hi: bytes | None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """Entries with ``lo <= key < hi`` in byte order (descending if ``reverse``)."""
        ...

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Entries whose key starts with ``prefix``, ascending."""
        ...

    def delete_range(self, lo: bytes, hi: bytes) -> None:
        """Delete every key in ``[lo, hi)``."""
        ...

    def approximate_count(self) -> int:
        """An estimate of the number of keys (exact for memory)."""
        ...

    def close(self) -> None:
        """Release the backend; further use raises :class:`StateError`."""
        ...

    def destroy(self) -> None:
        """Close and delete all data (files included)."""
        ...


_CHUNK = 256
_BULK = 1024  # ops from which a write goes in bulk


class MemoryBackend:
    """An in-memory backend on a sorted dict: O(log n) writes, ordered scans, for tests.

    Iterators re-seek every few hundred keys, so writing while iterating is safe (the iterator
    may or may not see the writes, as with any non-snapshot read).
    """

    def __init__(self) -> None:
        self._data: SortedMap[bytes] = new_sorted_map()
        self._meta: dict[str, bytes] = {}
        self._closed = False

    @property
    def path(self) -> str | None:
        """Always None: nothing is on disk."""
        return None

    def _check(self) -> None:
        if self._closed:
            raise StateError("memory state backend is closed")

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key``, or None."""
        self._check()
        if key in self._data:
            return self._data[key]
        return None

    def write(self, ops: Iterable[Op], meta: Mapping[str, bytes] | None = None) -> None:
        """Apply ``ops`` in order and store ``meta``.

        A large write (a commit's write-back) is applied in bulk: the last op per key decides
        (ops on different keys commute), and when it is big next to the store, the sorted map
        is rebuilt with one sort instead of one O(log n) insertion or removal per key."""
        self._check()
        data = self._data
        ops = ops if isinstance(ops, list) else list(ops)
        if len(ops) < _BULK:
            for key, value in ops:
                if value is None:
                    data.pop(key, None)
                else:
                    data[key] = value
        else:
            final = dict(ops)
            if len(final) * 4 >= len(data):  # rebuild: one sort (open iterators keep the old map)
                merged = dict(data.items())
                merged.update(final)
                self._data = new_sorted_map()
                self._data.update((k, v) for k, v in merged.items() if v is not None)
            else:
                for key, value in final.items():
                    if value is None:
                        data.pop(key, None)
                    else:
                        data[key] = value
        if meta:
            self._meta.update(meta)

    def read_meta(self, name: str) -> bytes | None:
        """A metadata entry, or None."""
        self._check()
        return self._meta.get(name)

    def iter_range(
        self, lo: bytes | None, hi: bytes | None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """Entries with ``lo <= key < hi``, ascending (or descending)."""
        self._check()
        return self._iter(lo, hi, reverse)

    def _iter(
        self, lo: bytes | None, hi: bytes | None, reverse: bool
    ) -> Iterator[tuple[bytes, bytes]]:
        data = self._data
        inclusive = (True, False)
        while True:
            keys = list(islice(data.irange(lo, hi, inclusive, reverse), _CHUNK))
            for key in keys:
                if key in data:  # may have been deleted since the chunk was taken
                    yield key, data[key]
            if len(keys) < _CHUNK:
                return
            # Re-seek after the last key: a SortedDict must not change under an open irange.
            if reverse:
                hi, inclusive = keys[-1], (inclusive[0], False)
            else:
                lo, inclusive = keys[-1], (False, False)

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Entries whose key starts with ``prefix``."""
        return self.iter_range(prefix, prefix_end(prefix))

    def delete_range(self, lo: bytes, hi: bytes) -> None:
        """Delete every key in ``[lo, hi)``."""
        self._check()
        doomed = list(self._data.irange(lo, hi, (True, False), False))
        for key in doomed:
            del self._data[key]

    def approximate_count(self) -> int:
        """The exact number of keys."""
        self._check()
        return len(self._data)

    def close(self) -> None:
        """Mark closed (data is kept until :meth:`destroy`)."""
        self._closed = True

    def destroy(self) -> None:
        """Drop all data and close."""
        self._data.clear()
        self._meta.clear()
        self._closed = True


def open_backend(kind: StateBackend, path: str | None) -> Backend:
    """Open a backend: ``"rocksdb"`` at ``path`` (created if missing) or ``"memory"``."""
    if kind == "memory":
        return MemoryBackend()
    if kind == "rocksdb":
        if path is None:
            raise StateError("a rocksdb state backend needs a path")
        return RocksDBBackend(path)
    raise StateError(f"unknown state backend kind {kind!r} (expected 'rocksdb' or 'memory')")


__all__ = ["Backend", "MemoryBackend", "Op", "open_backend"]
