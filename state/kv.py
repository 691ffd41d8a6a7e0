"""Key-value store: bytes keys to bytes values, ordered, with range and prefix scans.

>>> from state.backend import MemoryBackend
>>> s = KeyValueStore(MemoryBackend())
>>> for k in (b"a1", b"a2", b"b1"):
...     s.put(k, k.upper())
>>> list(s.prefix(b"a")), s.get(b"b1")
([(b'a1', b'A1'), (b'a2', b'A2')], b'B1')
>>> [k for k, _ in s.range(b"a2", None, reverse=True)]
[b'b1', b'a2']
"""

from __future__ import annotations

from collections.abc import Iterator

from state.cache import CachedStore
from state.encoding import prefix_end


class KeyValueStore(CachedStore):
    """An ordered bytes map with a write-back cache; raw backend keys are the user keys.

    Changelog records are ``(key, value)`` as written (tombstone: ``value is None``).
    """

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key`` (own unflushed writes included), or None."""
        return self._lookup(key)

    def put(self, key: bytes, value: bytes) -> None:
        """Set ``key`` to ``value``."""
        self._cache.set(key, value)

    def delete(self, key: bytes) -> None:
        """Remove ``key`` (a tombstone until written back)."""
        self._cache.set(key, None)

    def range(
        self, lo: bytes | None, hi: bytes | None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """Entries with ``lo <= key < hi`` (None: unbounded), ascending unless ``reverse``."""
        return self._scan(lo, hi, reverse)

    def prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Entries whose key starts with ``prefix``, ascending."""
        return self._scan(prefix, prefix_end(prefix))

    def all(self) -> Iterator[tuple[bytes, bytes]]:
        """Every entry, ascending."""
        return self._scan(None, None)

    def approximate_count(self) -> int:
        """The backend's estimate of its key count (unflushed writes not counted)."""
        return self.backend.approximate_count()


__all__ = ["KeyValueStore"]
