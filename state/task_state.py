"""The stores of one task: opening, typed access, the commit protocol and changelog restore.

A task (sub-topology x partition) owns one store per declared name, backed by
``{state_dir}/{store}/{partition}`` (RocksDB) or memory. The runtime drives it:

* commit: ``prepare_commit()`` takes every store's dirty entries and returns the changelog
  records to produce; after the producer has flushed and the input offsets are committed,
  ``finish_commit(end_offsets, source_offsets)`` writes the same entries to the backend in one
  batch per store together with the changelog offset reached, so data and offsets agree.
* restore: ``restore_plan()`` says, per store, which changelog partition to read from which
  offset (the stored one; 0 for a new, missing or corrupt DB); ``restore(name, records, end)``
  replays them in write batches.

>>> from streams.core.serde import KEY, PICKLE
>>> ts = TaskStores([StoreDef("counts", "kv", "app-counts-changelog", KEY, PICKLE)], 0)
>>> s = ts.kv("counts"); s.put("a", 1); s.get("a")
1
>>> [(t, p, len(recs)) for t, p, recs in ts.prepare_commit()]
[('app-counts-changelog', 0, 1)]
>>> ts.finish_commit({"app-counts-changelog": 1}, {"in": 5}); ts.restore_plan()
[RestoreStep(store='counts', topic='app-counts-changelog', start=1)]
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import msgspec

from state.backend import Backend, MemoryBackend, Op
from state.cache import CachedStore, ChangelogRecord
from state.kv import KeyValueStore
from state.rocks import RocksDBBackend, RocksDBMemory
from state.session import SessionStore
from state.window import WindowStore
from state.window_objects import ObjectWindows
from streams.core.errors import StateError
from streams.core.policies import StateBackend
from streams.core.serde import Serde

log = logging.getLogger("streams.state")

CHANGELOG_OFFSET = "changelog-offset"
SOURCE_OFFSETS = "source-offsets"
WATERMARK = "watermark"


@dataclass(frozen=True)
class StoreDef:
    """What a task needs to know about one of its stores."""

    name: str
    kind: Literal["kv", "window", "session"]
    changelog: str
    key_serde: Serde
    value_serde: Serde
    #: False when the changelog is the table's own source topic: nothing is produced to it
    logged: bool = True


class RestoreStep(NamedTuple):
    store: str
    topic: str
    start: int


_TOMBSTONE = object()
_MISS = object()


class ObjectKV:
    """A key-value store of Python objects over a bytes :class:`KeyValueStore`.

    Writes stay Python objects in a dirty map until :meth:`flush_objects` (called at commit):
    a key updated in every micro-batch is pickled once per commit, not once per batch, and
    reads of recently written keys skip the store and the unpickling.
    """

    __slots__ = ("_dirty", "_kd", "_ks", "_vd", "_vs", "raw")

    def __init__(self, raw: KeyValueStore, key_serde: Serde, value_serde: Serde) -> None:
        self.raw = raw
        self._ks, self._kd = key_serde.serialize, key_serde.deserialize
        self._vs, self._vd = value_serde.serialize, value_serde.deserialize
        self._dirty: dict[Any, Any] = {}

    def get(self, key: Any, default: Any = None) -> Any:
        v = self._dirty.get(key, _MISS)
        if v is not _MISS:
            return default if v is _TOMBSTONE else v
        b = self.raw.get(self._ks(key))  # type: ignore[arg-type]
        return default if b is None else self._vd(b)

    def put(self, key: Any, value: Any) -> None:
        self._dirty[key] = _TOMBSTONE if value is None else value

    def delete(self, key: Any) -> None:
        self._dirty[key] = _TOMBSTONE

    @property
    def dirty_count(self) -> int:
        return len(self._dirty)

    def flush_objects(self) -> None:
        """Serialize dirty objects into the bytes store's write-back cache."""
        ks, vs, raw = self._ks, self._vs, self.raw
        for k, v in self._dirty.items():
            if v is _TOMBSTONE:
                raw.delete(ks(k))  # type: ignore[arg-type]
            else:
                raw.put(ks(k), vs(v))  # type: ignore[arg-type]
        self._dirty.clear()

    def discard_objects(self) -> None:
        """Drop uncommitted writes (a crash, a revoked task)."""
        self._dirty.clear()

    def items(self) -> Iterator[tuple[Any, Any]]:
        """Every entry, in key-byte order (ordered for str, int and bytes keys)."""
        self.flush_objects()
        for k, v in self.raw.all():
            yield self._kd(k), self._vd(v)

    def range(self, lo: Any = None, hi: Any = None) -> Iterator[tuple[Any, Any]]:
        """Entries with ``lo <= key < hi`` (by encoded key order)."""
        self.flush_objects()
        lob = None if lo is None else self._ks(lo)
        hib = None if hi is None else self._ks(hi)
        for k, v in self.raw.range(lob, hib):
            yield self._kd(k), self._vd(v)

    def __contains__(self, key: Any) -> bool:
        return self.get(key, _TOMBSTONE) is not _TOMBSTONE

    def __len__(self) -> int:
        self.flush_objects()
        return sum(1 for _ in self.raw.all())


_STORE_TYPES: dict[str, type[CachedStore]] = {
    "kv": KeyValueStore,
    "window": WindowStore,
    "session": SessionStore,
}


class TaskStores:
    """All stores of one task partition. ``backend`` is ``"rocksdb"`` (needs ``state_dir``;
    ``rocksdb``: the memory bounds its databases share with other tasks') or ``"memory"``."""

    def __init__(
        self,
        defs: Iterable[StoreDef],
        partition: int,
        *,
        backend: StateBackend = "memory",
        state_dir: str | None = None,
        cache_max_entries: int = 10_000,
        rocksdb: RocksDBMemory | None = None,
    ) -> None:
        if backend == "rocksdb" and state_dir is None:
            raise StateError("the rocksdb state backend needs a state_dir")
        self.partition = partition
        self.defs = {d.name: d for d in defs}
        self.backend_kind = backend
        self.state_dir = state_dir
        self.stores: dict[str, CachedStore] = {}
        self._views: dict[str, ObjectKV] = {}
        self._windows: dict[str, ObjectWindows] = {}
        self.cache_max_entries = cache_max_entries
        self.rocksdb = rocksdb  # (the memory bounds shared with the worker's other stores)
        self.restored_records = 0
        self._pending: dict[str, list[Op]] = {}
        self._fresh: set[str] = set()
        for d in self.defs.values():
            self.stores[d.name] = _STORE_TYPES[d.kind](
                self._open(d), cache_max_entries=cache_max_entries
            )

    def path(self, name: str) -> str | None:
        if self.state_dir is None:
            return None
        return os.path.join(self.state_dir, name, str(self.partition))

    def _open(self, d: StoreDef) -> Backend:
        path = self.path(d.name)
        if self.backend_kind == "memory" or path is None:
            self._fresh.add(d.name)
            return MemoryBackend()
        if not os.path.isdir(path):
            self._fresh.add(d.name)
        try:
            return RocksDBBackend(path, memory=self.rocksdb)
        except StateError as e:
            # a corrupt local copy is only a cache of the changelog: drop it and rebuild
            log.warning(
                "store '%s' partition %d: %s; rebuilding from the changelog",
                d.name,
                self.partition,
                e,
            )
            shutil.rmtree(path, ignore_errors=True)
            self._fresh.add(d.name)
            return RocksDBBackend(path, memory=self.rocksdb)

    # -- typed access ---------------------------------------------------------------------------
    def kv(self, name: str) -> ObjectKV:
        view = self._views.get(name)
        if view is None:
            store = self.stores.get(name)
            if not isinstance(store, KeyValueStore):
                raise StateError(f"no key-value store '{name}' in this task")
            d = self.defs[name]
            view = self._views[name] = ObjectKV(store, d.key_serde, d.value_serde)
        return view

    def windows(self, name: str) -> ObjectWindows:
        """The accumulator-object view of window store ``name`` (tumbling and hopping
        aggregations); its dirty objects go to the store at every commit."""
        view = self._windows.get(name)
        if view is None:
            store = self.stores.get(name)
            if not isinstance(store, WindowStore):
                raise StateError(f"no window store '{name}' in this task")
            view = self._windows[name] = ObjectWindows(
                store, max_objects=max(500_000, 10 * self.cache_max_entries)
            )
        return view

    def raw(self, name: str) -> CachedStore:
        """The bytes store ``name``, with what its object view holds written into its cache
        first (interactive queries and tests read windows there)."""
        try:
            store = self.stores[name]
        except KeyError:
            raise StateError(f"no store '{name}' in this task") from None
        view = self._windows.get(name)
        if view is not None:
            view.flush_objects()
        return store

    @property
    def needs_flush(self) -> bool:
        views: list[ObjectKV | ObjectWindows] = [*self._views.values(), *self._windows.values()]
        return any(s.needs_flush for s in self.stores.values()) or any(
            v.dirty_count >= self.cache_max_entries for v in views
        )

    # -- commit -----------------------------------------------------------------------------------
    def prepare_commit(
        self, names: Collection[str] | None = None
    ) -> list[tuple[str, int, list[ChangelogRecord]]]:
        """Take dirty entries (of the stores ``names``; default all); return ``(changelog
        topic, partition, records)`` to produce. Called twice in one commit (some stores
        after the others), the entries of both calls are written by :meth:`finish_commit`."""
        out = []
        for name, view in self._views.items():
            if names is None or name in names:
                view.flush_objects()
        for name, wview in self._windows.items():
            if names is None or name in names:
                wview.flush_objects()
        for name, store in self.stores.items():
            if names is not None and name not in names:
                continue
            ops = store.take_dirty()
            self._pending[name] = [*self._pending.get(name, ()), *ops]
            recs = store.changelog_records(ops) if self.defs[name].logged else []
            if recs:
                out.append((self.defs[name].changelog, self.partition, recs))
        return out

    def finish_commit(
        self,
        changelog_end: Mapping[str, int],
        source_offsets: Mapping[str, int],
        watermark: int | None = None,
    ) -> None:
        """Write the taken entries with the changelog end offsets (by topic) reached (and the
        task's watermark, so closed windows stay closed after a restart)."""
        src = msgspec.json.encode(dict(source_offsets))
        for name, store in self.stores.items():
            ops = self._pending.pop(name, [])
            end = changelog_end.get(self.defs[name].changelog)
            meta = {SOURCE_OFFSETS: src}
            if watermark is not None:
                meta[WATERMARK] = str(watermark).encode()
            if end is not None:
                meta[CHANGELOG_OFFSET] = str(end).encode()
            store.write_back(ops, meta)
            self._fresh.discard(name)

    # -- restore ----------------
    def stored_watermark(self) -> int | None:
        """The task watermark written with the last commit (local copies only)."""
        marks = []
        for name, store in self.stores.items():
            raw = None if name in self._fresh else store.read_meta(WATERMARK)
            if raw is not None:
                marks.append(int(raw))
        return max(marks) if marks else None

    def stored_offset(self, name: str) -> int | None:
        raw = self.stores[name].read_meta(CHANGELOG_OFFSET)
        return None if raw is None else int(raw)

    def restore_plan(self) -> list[RestoreStep]:
        plan = []
        for name, d in self.defs.items():
            off = None if name in self._fresh else self.stored_offset(name)
            plan.append(RestoreStep(name, d.changelog, off or 0))
        return plan

    def reset(self, name: str) -> None:
        """Wipe a store's local copy (its stored offset is ahead of the changelog's end).

        The store object stays the same and only its backend is replaced: processors and
        views hold it (a session aggregation holds the store itself), so every kind of store
        keeps working after a rebuild."""
        d = self.defs[name]
        store = self.stores[name]
        store.backend.destroy()
        type(store).__init__(store, self._open(d), cache_max_entries=store.cache_max_entries)
        view = self._views.get(name)
        if view is not None:
            view.discard_objects()
        wview = self._windows.get(name)
        if wview is not None:
            wview.discard_objects()
        self._fresh.add(name)

    def restore(self, name: str, records: Iterable[ChangelogRecord], end_offset: int) -> int:
        """Replay changelog records into store ``name``; ``end_offset`` goes with the last batch."""
        wview = self._windows.get(name)
        if wview is not None:  # it may have loaded the store before this restore
            if wview.dirty_count:
                raise StateError("restore() needs a store without dirty entries")
            wview.discard_objects()
        n = self.stores[name].restore(records, meta={CHANGELOG_OFFSET: str(end_offset).encode()})
        self.restored_records += n
        self._fresh.discard(name)
        return n

    def close(self) -> None:
        """Close every store. Dirty entries not committed are dropped (the changelog has the
        committed state)."""
        for v in self._views.values():
            v.discard_objects()
        self._views.clear()
        for w in self._windows.values():
            w.discard_objects()
        self._windows.clear()
        for s in self.stores.values():
            s.close()
        self.stores.clear()


__all__ = ["CHANGELOG_OFFSET", "ObjectKV", "RestoreStep", "StoreDef", "TaskStores"]
