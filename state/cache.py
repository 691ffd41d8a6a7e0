"""The write-back cache every typed store sits on: dirty raw entries, merged reads, commit hooks.

Writes land in a sorted in-memory map (latest value per raw key, ``None`` = tombstone). At commit
the caller takes the dirty ops, turns them into changelog records, and writes them back to the
backend in one atomic batch with the offsets:

>>> from state.backend import MemoryBackend
>>> from state.kv import KeyValueStore
>>> s = KeyValueStore(MemoryBackend())
>>> s.put(b"a", b"1"); s.put(b"a", b"2"); s.delete(b"b")
>>> ops = s.take_dirty()
>>> ops
[(b'a', b'2'), (b'b', None)]
>>> s.changelog_records(ops)
[(b'a', b'2'), (b'b', None)]
>>> s.write_back(ops, {"changelog-offset": b"41"})
>>> s.get(b"a"), s.read_meta("changelog-offset")
(b'2', b'41')
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from itertools import islice

from state._dirty import DirtyMap
from state.backend import Backend, Op
from streams.core.errors import StateError

ChangelogRecord = tuple[bytes, bytes | None]
"""``(changelog key, value)``; a None value is a tombstone."""


class CachedStore:
    """Base of the typed stores: write-back cache over a :class:`Backend`.

    Reads see the cache first, then entries taken by :meth:`take_dirty` but not yet written back,
    then the backend. ``cache_max_entries`` counts logical entries; the cache never evicts dirty
    entries, it only reports :attr:`needs_flush` so the caller can commit early.
    """

    _RAW_PER_ENTRY = 1  # raw backend keys one logical entry dirties (index entries included)

    def __init__(self, backend: Backend, *, cache_max_entries: int = 10_000) -> None:
        if cache_max_entries < 1:
            raise ValueError("cache_max_entries must be >= 1")
        self.backend = backend
        self.cache_max_entries = cache_max_entries
        self._cache = DirtyMap()
        # Taken by take_dirty() but not yet written back: still visible to reads.
        self._pending: DirtyMap | None = None

    # -- commit protocol ---------------------------------------------------------------------

    @property
    def needs_flush(self) -> bool:
        """True once the cache holds ``cache_max_entries`` dirty entries: commit soon."""
        return len(self._cache) >= self.cache_max_entries * self._RAW_PER_ENTRY

    @property
    def dirty_count(self) -> int:
        """Number of dirty raw keys in the cache."""
        return len(self._cache)

    def take_dirty(self) -> list[Op]:
        """The raw backend ops for every dirty key (latest value, one per key), ascending.

        The cache is emptied, but reads keep seeing the taken entries until :meth:`write_back`.
        Calling it again before ``write_back`` (a retried commit) returns the union.
        """
        taken = self._cache
        if self._pending is not None:
            self._pending.merge_from(taken)
            taken = self._pending
        self._pending = taken
        self._cache = DirtyMap()
        return taken.sorted_items()

    def write_back(self, ops: Iterable[Op], meta: Mapping[str, bytes] | None = None) -> None:
        """Write ``ops`` (from :meth:`take_dirty`) and ``meta`` to the backend in one batch."""
        self.backend.write(ops, meta)
        self._pending = None

    def flush(self, meta: Mapping[str, bytes] | None = None) -> list[ChangelogRecord]:
        """``take_dirty`` + ``write_back`` in one call; returns the changelog records."""
        ops = self.take_dirty()
        records = self.changelog_records(ops)
        self.write_back(ops, meta)
        return records

    def changelog_records(self, ops: Iterable[Op]) -> list[ChangelogRecord]:
        """The changelog records for raw ``ops``: one per logical entry, no index entries."""
        return list(ops)

    def _restore_ops(self, records: list[ChangelogRecord]) -> list[Op]:
        """Raw backend ops (index entries included) that replay changelog ``records``."""
        return records

    def restore(
        self,
        records: Iterable[ChangelogRecord],
        *,
        meta: Mapping[str, bytes] | None = None,
        batch_size: int = 10_000,
    ) -> int:
        """Replay changelog ``records`` into the backend in batches; returns how many.

        ``meta`` (e.g. the changelog offset reached) is written with the last batch. The cache
        must be clean: restoring under dirty entries would let them shadow restored data.
        """
        if len(self._cache) or self._pending is not None:
            raise StateError("restore() needs a store without dirty entries")
        it = iter(records)
        count = 0
        while True:
            batch = list(islice(it, batch_size))
            count += len(batch)
            if len(batch) < batch_size:
                self.backend.write(self._restore_ops(batch), meta)
                return count
            self.backend.write(self._restore_ops(batch))

    # -- reads and writes on raw keys ----------------------------------------------------------

    def read_meta(self, name: str) -> bytes | None:
        """A metadata entry written with :meth:`write_back` or :meth:`restore`."""
        return self.backend.read_meta(name)

    def close(self) -> None:
        """Close the backend (dirty entries not written back are dropped)."""
        self.backend.close()

    def _lookup(self, raw: bytes) -> bytes | None:
        cache = self._cache.data
        if raw in cache:
            return cache[raw]
        pending = self._pending
        if pending is not None and raw in pending.data:
            return pending.data[raw]
        return self.backend.get(raw)

    def _forget_or_delete(self, raw: bytes) -> None:
        """Delete ``raw``; an entry written since the last commit that the backend never had
        is forgotten instead of tombstoned. Its changelog never saw it, so no tombstone is
        owed, and tombstones left in the cache cost every later range scan over them: a
        session extended by each record of a busy key left one per record (quadratic)."""
        cache = self._cache.data
        if (
            cache.get(raw) is not None
            and (self._pending is None or raw not in self._pending.data)
            and self.backend.get(raw) is None
        ):
            self._cache.discard(raw)
        else:
            self._cache.set(raw, None)

    def _scan(
        self, lo: bytes | None, hi: bytes | None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """Live entries in ``[lo, hi)`` merging backend, pending and cache (newest wins).

        The cache part is copied when the scan starts, so writing during iteration is safe.
        """
        base = self.backend.iter_range(lo, hi, reverse=reverse)
        merged: Iterator[Op] | None = None
        for layer in (self._pending, self._cache):
            if layer is None:
                continue
            snap = layer.scan(lo, hi, reverse)
            if snap:
                merged = _overlay(snap, base if merged is None else merged, reverse)
        return base if merged is None else _live(merged)


def _overlay(top: list[Op], base: Iterator[Op], reverse: bool) -> Iterator[Op]:
    """Merge two sorted streams; on equal keys ``top`` wins (tombstones included)."""
    ti = iter(top)
    t = next(ti, None)
    for b in base:
        bk = b[0]
        while t is not None and (t[0] > bk if reverse else t[0] < bk):
            yield t
            t = next(ti, None)
        if t is not None and t[0] == bk:
            yield t
            t = next(ti, None)
        else:
            yield b
    while t is not None:
        yield t
        t = next(ti, None)


def _live(ops: Iterator[Op]) -> Iterator[tuple[bytes, bytes]]:
    for key, value in ops:
        if value is not None:
            yield key, value


__all__ = ["CachedStore", "ChangelogRecord"]
