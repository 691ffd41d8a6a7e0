"""Session store: ``(key, start, end)`` -> value, with Kafka Streams' session lookup semantics.

Two namespaces in one backend, written in the same batch:

- ``K | len(key):u32 | key | end:i64 | start:i64`` -> value  (a key's sessions, by end)
- ``T | end:i64 | key | start:i64`` -> ``b""``                (time order: closing and expiry)

Changelog records are ``(key | end:i64 | start:i64, value)`` (Kafka's session key layout).

>>> from state.backend import MemoryBackend
>>> s = SessionStore(MemoryBackend())
>>> s.put(b"u", 0, 10, b"a"); s.put(b"u", 30, 40, b"b")
>>> t, gap = 15, 5    # sessions a record at t merges with: end >= t - gap, start <= t + gap
>>> list(s.find_sessions(b"u", t - gap, t + gap))
[(0, 10, b'a')]
>>> s.expire(11)
[(b'u', 0, 10)]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from state.backend import Op
from state.cache import CachedStore, ChangelogRecord
from state.encoding import decode_ts, encode_len, encode_ts, prefix_end
from streams.core.errors import StateError

_K = b"K"
_T = b"T"


def _kprefix(key: bytes) -> bytes:
    return _K + encode_len(len(key)) + key


class SessionStore(CachedStore):
    """Session windows keyed by ``(key, start, end)`` with a write-back cache."""

    _RAW_PER_ENTRY = 2

    def put(self, key: bytes, start: int, end: int, value: bytes) -> None:
        """Store the session ``[start, end]`` of ``key``."""
        if start > end:
            raise ValueError(f"session start {start} is after its end {end}")
        s, e = encode_ts(start), encode_ts(end)
        self._cache.set(_kprefix(key) + e + s, value)
        self._cache.set(_T + e + key + s, b"")

    def get(self, key: bytes, start: int, end: int) -> bytes | None:
        """The value of one session, or None."""
        return self._lookup(_kprefix(key) + encode_ts(end) + encode_ts(start))

    def remove(self, key: bytes, start: int, end: int) -> None:
        """Delete one session."""
        s, e = encode_ts(start), encode_ts(end)
        self._forget_or_delete(_kprefix(key) + e + s)
        self._forget_or_delete(_T + e + key + s)

    def find_sessions(
        self, key: bytes, earliest_end: int, latest_start: int
    ) -> Iterator[tuple[int, int, bytes]]:
        """``(start, end, value)`` of ``key``'s sessions with ``end >= earliest_end`` and
        ``start <= latest_start`` (both inclusive), ascending by start.

        Cost: a scan of the key's sessions ending at or after ``earliest_end``.
        """
        p = _kprefix(key)
        n = len(p)
        found = []
        for raw, value in self._scan(p + encode_ts(earliest_end), prefix_end(p)):
            start = decode_ts(raw, n + 8)
            if start <= latest_start:
                found.append((start, decode_ts(raw, n), value))
        found.sort(key=lambda s: (s[0], s[1]))
        return iter(found)

    def fetch_all_ending_before(self, t: int) -> Iterator[tuple[bytes, int, int, bytes]]:
        """``(key, start, end, value)`` of every session with ``end < t``, ascending by end."""
        for raw, _ in self._scan(_T, _T + encode_ts(t)):
            key, s, e = raw[9:-8], raw[-8:], raw[1:9]
            value = self._lookup(_kprefix(key) + e + s)
            if value is not None:
                yield key, decode_ts(s), decode_ts(e), value

    def expire(self, before_end: int) -> list[tuple[bytes, int, int]]:
        """Delete every session with ``end < before_end``; returns ``(key, start, end)`` removed.

        The deletions are tombstones in the cache, carried by the next :meth:`take_dirty`.
        """
        removed = [
            (raw[9:-8], decode_ts(raw, len(raw) - 8), decode_ts(raw, 1))
            for raw, _ in self._scan(_T, _T + encode_ts(before_end))
        ]
        for key, start, end in removed:
            self.remove(key, start, end)
        return removed

    def changelog_records(self, ops: Iterable[Op]) -> list[ChangelogRecord]:
        """One record per session: ``(key | end:i64 | start:i64, value or None)``."""
        return [(raw[5:], value) for raw, value in ops if raw[:1] == _K]

    def _restore_ops(self, records: list[ChangelogRecord]) -> list[Op]:
        ops: list[Op] = []
        append = ops.append
        for ck, value in records:
            if len(ck) < 16:
                raise StateError(f"session changelog key too short ({len(ck)} bytes): {ck!r}")
            key, e, s = ck[:-16], ck[-16:-8], ck[-8:]
            append((_K + encode_len(len(key)) + key + e + s, value))
            append((_T + e + key + s, None if value is None else b""))
        return ops

    def approximate_count(self) -> int:
        """Estimated number of sessions in the backend (unflushed writes not counted)."""
        return self.backend.approximate_count() // 2


__all__ = ["SessionStore"]
