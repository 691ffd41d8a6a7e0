"""Window store: ``(key, window start)`` -> value, fetchable per key and across keys by time.

Two namespaces in one backend, written in the same batch:

- ``K | len(key):u32 | key | start:i64`` -> value  (per-key fetch: one contiguous range)
- ``T | start:i64 | key`` -> ``b""``                (time order: closing and expiry)

``i64`` is big-endian with the sign bit flipped, so negative times sort first. Changelog records
are ``(key | start:i64, value)``; the time index is rebuilt on :meth:`~WindowStore.restore`.

>>> from state.backend import MemoryBackend
>>> w = WindowStore(MemoryBackend())
>>> w.put(b"k", 0, b"a"); w.put(b"k", 10, b"b"); w.put(b"j", -10, b"c")
>>> list(w.fetch(b"k", 0, 10))
[(0, b'a'), (10, b'b')]
>>> list(w.fetch_all(-10, 0))
[(b'j', -10, b'c'), (b'k', 0, b'a')]
>>> w.expire(10), w.get(b"k", 0)
([(b'j', -10), (b'k', 0)], None)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import repeat

from state.backend import Op
from state.cache import CachedStore, ChangelogRecord
from state.encoding import decode_ts, encode_len, encode_ts, prefix_end
from streams.core.errors import StateError

_K = b"K"
_T = b"T"


def _kprefix(key: bytes) -> bytes:
    return _K + encode_len(len(key)) + key


def _raw_keys(
    pairs: list[tuple[bytes, int]], *, index: bool = True
) -> tuple[list[bytes], list[bytes]]:
    """The value keys (``_kprefix(key) + ts``, inlined: a commit builds one per window) and,
    with ``index``, the time-index keys of ``(key, start)`` pairs."""
    ln = encode_len
    tss = [encode_ts(s) for _, s in pairs]
    keys = [_K + ln(len(k)) + k + ts for (k, _), ts in zip(pairs, tss, strict=True)]
    if not index:
        return keys, []
    return keys, [_T + ts + k for (k, _), ts in zip(pairs, tss, strict=True)]


class WindowStore(CachedStore):
    """Windowed aggregates keyed by ``(key, start_ms)`` with a write-back cache."""

    _RAW_PER_ENTRY = 2

    def put(self, key: bytes, start_ms: int, value: bytes) -> None:
        """Set the window of ``key`` starting at ``start_ms``."""
        ts = encode_ts(start_ms)
        self._cache.set(_kprefix(key) + ts, value)
        self._cache.set(_T + ts + key, b"")

    def put_many(self, items: Iterable[tuple[bytes, int, bytes]], *, new: bool = True) -> None:
        """:meth:`put` of every ``(key, start, value)``, in bulk (a commit writes every dirty
        window of a window-object view at once). ``new=False``: the caller knows each window
        is already in the store, so its time-index entry is left as it is."""
        items = items if isinstance(items, list) else list(items)
        if not items:
            return
        keys, index = _raw_keys([(k, s) for k, s, _ in items], index=new)
        self._cache.set_many(keys, [v for _, _, v in items])
        if new:
            self._cache.set_many(index, repeat(b""))

    def delete_many(self, items: Iterable[tuple[bytes, int]]) -> None:
        """:meth:`delete` of every ``(key, start)`` (closed windows, deleted in bulk)."""
        items = items if isinstance(items, list) else list(items)
        if not items:
            return
        keys, index = _raw_keys(items)
        self._cache.set_many(keys, repeat(None))
        self._cache.set_many(index, repeat(None))

    def is_empty(self) -> bool:
        """True when no window is live (backend, taken and dirty entries merged)."""
        return next(self._scan(_T, prefix_end(_T)), None) is None

    def get(self, key: bytes, start_ms: int) -> bytes | None:
        """The value of one window, or None."""
        return self._lookup(_kprefix(key) + encode_ts(start_ms))

    def delete(self, key: bytes, start_ms: int) -> None:
        """Remove one window."""
        ts = encode_ts(start_ms)
        self._cache.set(_kprefix(key) + ts, None)
        self._cache.set(_T + ts + key, None)

    def fetch(
        self, key: bytes, t_from: int, t_to: int, *, reverse: bool = False
    ) -> Iterator[tuple[int, bytes]]:
        """``(start, value)`` of ``key``'s windows with ``t_from <= start <= t_to``, by start."""
        if t_from > t_to:
            return iter(())
        p = _kprefix(key)
        n = len(p)
        # Every K key of this key is exactly n + 8 bytes, so "+ b'\0'" is an inclusive bound.
        rows = self._scan(p + encode_ts(t_from), p + encode_ts(t_to) + b"\0", reverse)
        return ((decode_ts(raw, n), value) for raw, value in rows)

    def fetch_all(self, t_from: int, t_to: int) -> Iterator[tuple[bytes, int, bytes]]:
        """``(key, start, value)`` for every window with ``t_from <= start <= t_to``,
        ascending by start then key."""
        if t_from > t_to:
            return
        for raw, _ in self._scan(_T + encode_ts(t_from), prefix_end(_T + encode_ts(t_to))):
            key = raw[9:]
            value = self._lookup(_kprefix(key) + raw[1:9])
            if value is not None:
                yield key, decode_ts(raw, 1), value

    def expire(self, before_start_ms: int) -> list[tuple[bytes, int]]:
        """Delete every window with ``start < before_start_ms``; returns ``(key, start)`` removed.

        The deletions are tombstones in the cache, so the next :meth:`take_dirty` and
        :meth:`changelog_records` already carry them to the backend and the changelog.
        """
        rows = self._scan(_T, _T + encode_ts(before_start_ms))
        removed = [(raw[9:], decode_ts(raw, 1)) for raw, _ in rows]
        for key, start in removed:
            self.delete(key, start)
        return removed

    def changelog_records(self, ops: Iterable[Op]) -> list[ChangelogRecord]:
        """One record per window: ``(key | start:i64, value or None)``; index ops are dropped."""
        return [(raw[5:], value) for raw, value in ops if raw[:1] == _K]

    def _restore_ops(self, records: list[ChangelogRecord]) -> list[Op]:
        ops: list[Op] = []
        append = ops.append
        for ck, value in records:
            if len(ck) < 8:
                raise StateError(f"window changelog key too short ({len(ck)} bytes): {ck!r}")
            key, ts = ck[:-8], ck[-8:]
            append((_K + encode_len(len(key)) + key + ts, value))
            append((_T + ts + key, None if value is None else b""))
        return ops

    def approximate_count(self) -> int:
        """Estimated number of windows in the backend (unflushed writes not counted)."""
        return self.backend.approximate_count() // 2


__all__ = ["WindowStore"]
