"""Window accumulators as Python objects over a bytes :class:`~state.window.WindowStore`.

A tumbling or hopping aggregation touches each (key, window) in many micro-batches and closes
it once. Through the bytes store that is one unpickle, one pickle and two cache writes per
(key, window) per batch, and closing scans the time index, looks every value up again and then
scans once more to delete. This view keeps the accumulators as objects, by window start:

* reads and writes are dict operations; objects are pickled once per commit
  (:meth:`ObjectWindows.flush_objects`, called by the task's commit), so the changelog gets the
  same record per dirty window as before: its latest value;
* closing takes whole window starts out of the view, sorted by key, with no scan: while the
  view is *complete* (it holds every live window of the store, which it checks once, loading a
  store restored from a changelog), the store has nothing the view does not; closed windows
  become tombstones in the bytes store in one bulk delete. A window opened and closed between
  two commits never reached the store or its changelog, so it leaves no tombstone (as
  :meth:`~state.cache.CachedStore._forget_or_delete` does for sessions): restoring the
  changelog gives the same store;
* while complete, the view knows which dirty windows are new to the store; a commit writes the
  time-index entry of those only (the others have theirs);
* a view that would hold more than ``max_objects`` windows drops its clean objects after a
  commit and reads through the bytes store from then on (scans included): memory stays bounded.

>>> from state.backend import MemoryBackend
>>> from state.window import WindowStore
>>> w = ObjectWindows(WindowStore(MemoryBackend()))
>>> w.put_many([((b"a", 0), [1]), ((b"b", 0), [2]), ((b"a", 5), [3])])
>>> w.get_many([(b"a", 0), (b"c", 0)]) == [[1], MISSING]
True
>>> w.flush_objects(); [(k, s) for k, s, _ in w.raw.fetch_all(0, 9)]
[(b'a', 0), (b'b', 0), (b'a', 5)]
>>> w.close_until(0)
[(b'a', 0, [1]), (b'b', 0, [2])]
>>> [(k, s) for k, s, _ in w.raw.fetch_all(0, 9)]
[(b'a', 5)]
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from state.encoding import INT64_MAX, INT64_MIN
from state.window import WindowStore

MISSING: Any = object()
"""What :meth:`ObjectWindows.get_many` answers for a window the store does not have."""

Pair = tuple[bytes, int]  # (encoded key, window start)
Entry = tuple[bytes, int, Any, bool, bool]  # (key, start, accumulator, dirty, logged)


class Satellite(Protocol):
    """What :class:`ObjectWindows` asks of another holder of its windows."""

    @property
    def dirty_count(self) -> int: ...

    def flush(self) -> None:
        """Write the dirty windows into the bytes store (at commit, before the view's)."""

    def discard(self) -> None:
        """Forget everything not flushed (with :meth:`ObjectWindows.discard_objects`)."""


class ObjectWindows:
    """The accumulator objects of one window store; see the module doc."""

    __slots__ = (
        "_complete",
        "_dirty",
        "_n",
        "_ndirty",
        "_new",
        "_wins",
        "max_objects",
        "raw",
        "satellite",
    )

    def __init__(self, raw: WindowStore, *, max_objects: int = 500_000) -> None:
        self.raw = raw
        self.max_objects = max_objects
        self._wins: dict[int, dict[bytes, Any]] = {}  # start -> key -> accumulator
        self._dirty: dict[int, dict[bytes, Any]] = {}  # the same, written since the last flush
        # (complete views only) the dirty windows the bytes store has never had
        self._new: dict[int, set[bytes]] = {}
        self._n = 0
        self._ndirty = 0
        # None: not checked yet (the store may still be restored before the first batch)
        self._complete: bool | None = None
        #: another holder of this store's windows (a columnar aggregation keeps them as Arrow
        #: columns, operators.windowed_arrow): flushed, counted and discarded with the view
        self.satellite: Satellite | None = None

    @property
    def dirty_count(self) -> int:
        """Windows written since the last :meth:`flush_objects`."""
        sat = self.satellite
        return self._ndirty + (0 if sat is None else sat.dirty_count)

    def release(self) -> list[Entry] | None:
        """Hand every window over (to a satellite) and hold none: ``(key, start, acc, dirty,
        logged)`` each, logged when the bytes store has it; None when the view is not complete
        (it can't tell what the store has). The store has nothing the holder does not, so
        the view stays complete for :meth:`adopt`."""
        if not self._check():
            return None
        out: list[Entry] = []
        for s, w in self._wins.items():
            d, f = self._dirty.get(s, {}), self._new.get(s, ())
            out.extend((k, s, acc, k in d, k not in f) for k, acc in w.items())
        self._wins.clear()
        self._dirty.clear()
        self._new.clear()
        self._n = self._ndirty = 0
        return out

    def adopt(self, entries: Iterable[Entry]) -> None:
        """Take windows back from :meth:`release` (complete views)."""
        assert self._complete is True
        wins, dirty, fresh = self._wins, self._dirty, self._new
        for k, s, acc, is_dirty, logged in entries:
            wins.setdefault(s, {})[k] = acc
            self._n += 1
            if is_dirty:
                dirty.setdefault(s, {})[k] = acc
                self._ndirty += 1
            if not logged:
                fresh.setdefault(s, set()).add(k)

    def _check(self) -> bool:
        """Whether the view holds every live window; on first use, load what the store has
        (a restored store) when it fits."""
        if self._complete is None:
            complete = True
            for key, start, raw in self.raw.fetch_all(INT64_MIN, INT64_MAX):
                if self._n >= self.max_objects:
                    complete = False
                    self._wins.clear()
                    self._n = 0
                    break
                self._wins.setdefault(start, {})[key] = pickle.loads(raw)
                self._n += 1
            self._complete = complete
        return self._complete

    def get(self, key: bytes, start: int) -> Any:
        """The accumulator of one window, or :data:`MISSING`."""
        w = self._wins.get(start)
        if w is not None:
            acc = w.get(key, MISSING)
            if acc is not MISSING:
                return acc
        return self.get_many(((key, start),))[0]

    def get_many(self, pairs: Iterable[Pair]) -> list[Any]:
        """The accumulator of each ``(key, start)``, or :data:`MISSING`."""
        complete, wins = self._check(), self._wins
        out: list[Any] = []
        append = out.append
        for key, start in pairs:
            w = wins.get(start)
            acc = MISSING if w is None else w.get(key, MISSING)
            if acc is MISSING and not complete:
                raw = self.raw.get(key, start)
                if raw is not None:
                    acc = pickle.loads(raw)
                    wins.setdefault(start, {})[key] = acc  # clean: the store has it
                    self._n += 1
            append(acc)
        return out

    def put_many(self, items: Iterable[tuple[Pair, Any]]) -> None:
        """Set the accumulator of each ``((key, start), acc)``."""
        # (an incomplete view can't tell new windows: get_many caches what the store has, but
        # a window absent from the view might be in the store, so none counts as new)
        complete = self._check()
        wins, dirty, fresh = self._wins, self._dirty, self._new
        n, nd = self._n, self._ndirty
        w = d = None
        last = None
        for (key, start), acc in items:
            if start != last:
                last = start
                w = wins.get(start)
                if w is None:
                    w = wins[start] = {}
                d = dirty.get(start)
                if d is None:
                    d = dirty[start] = {}
            assert w is not None and d is not None
            if key not in w:
                n += 1
                if complete:
                    f = fresh.get(start)
                    if f is None:
                        f = fresh[start] = set()
                    f.add(key)
            if key not in d:
                nd += 1
            w[key] = d[key] = acc
        self._n, self._ndirty = n, nd

    def merge_one(
        self,
        pairs: list[Pair],
        partials: list[Any],
        merge: Callable[[Any, Any], Any],
        init: Callable[[], Any],
    ) -> list[Any]:
        """For one aggregation, ``acc = [merge(acc[0] or init(), partial)]`` of each
        ``(key, start)``: :meth:`get_many`, the merges and :meth:`put_many` in one pass (a
        columnar batch's partial aggregates; pairs distinct). Returns the new accumulators."""
        if not self._check():  # (reads through the bytes store)
            old = self.get_many(pairs)
            accs = [
                [merge((init() if a is MISSING else a[0]), p)]
                for a, p in zip(old, partials, strict=True)
            ]
            self.put_many(zip(pairs, accs, strict=True))
            return accs
        wins, dirty, fresh = self._wins, self._dirty, self._new
        n, nd = self._n, self._ndirty
        w: dict[bytes, Any] = {}
        d: dict[bytes, Any] = {}
        f: set[bytes] = set()
        last = None
        out: list[Any] = []
        append = out.append
        for (key, start), p in zip(pairs, partials, strict=True):
            if start != last:
                last = start
                w = wins.get(start)  # type: ignore[assignment]
                if w is None:
                    w = wins[start] = {}
                d = dirty.get(start)  # type: ignore[assignment]
                if d is None:
                    d = dirty[start] = {}
                f = fresh.get(start)  # type: ignore[assignment]
                if f is None:
                    f = fresh[start] = set()
            acc = w.get(key)
            if acc is None:  # (accumulators are lists)
                acc = [merge(init(), p)]
                n += 1
                f.add(key)
            else:
                acc = [merge(acc[0], p)]
            if key not in d:
                nd += 1
            w[key] = d[key] = acc
            append(acc)
        self._n, self._ndirty = n, nd
        return out

    def close_until(self, last_start: int) -> list[tuple[bytes, int, Any]]:
        """Remove every window with ``start <= last_start``; returns ``(key, start, acc)``
        ascending by start, then key bytes (the bytes store's time order)."""
        complete, wins, dirty, fresh = self._check(), self._wins, self._dirty, self._new
        found: dict[int, dict[bytes, Any]] = {}
        unlogged: set[tuple[bytes, int]] = set()
        for s in [s for s in wins if s <= last_start]:
            found[s] = wins.pop(s)
            self._n -= len(found[s])
            self._ndirty -= len(dirty.pop(s, ()))
            unlogged.update((k, s) for k in fresh.pop(s, ()))
        if not complete:  # windows only the bytes store has
            for key, s, raw in self.raw.fetch_all(INT64_MIN, last_start):
                f = found.setdefault(s, {})
                if key not in f:
                    f[key] = pickle.loads(raw)
        out = [(k, s, f[k]) for s in sorted(found) for f in (found[s],) for k in sorted(f)]
        self.raw.delete_many([(k, s) for k, s, _ in out if (k, s) not in unlogged])
        return out

    def flush_objects(self) -> None:
        """Pickle the dirty windows into the bytes store's write-back cache (at commit)."""
        if self.satellite is not None:
            self.satellite.flush()
        dumps, fresh = pickle.dumps, self._new
        new: list[tuple[bytes, int, bytes]] = []
        known: list[tuple[bytes, int, bytes]] = []
        for s, d in self._dirty.items():
            f = fresh.get(s, ())
            for k, acc in d.items():
                (new if k in f else known).append((k, s, dumps(acc, protocol=5)))
        self.raw.put_many(new)
        self.raw.put_many(known, new=self._complete is not True)
        self._dirty.clear()
        fresh.clear()
        self._ndirty = 0
        if self._n > self.max_objects:  # too many to keep: read through the store from now on
            self._wins.clear()
            self._n = 0
            self._complete = False

    def discard_objects(self) -> None:
        """Forget everything (uncommitted writes are dropped: a crash, a revoked task, a store
        reset or restored under the view). The next use checks the store again."""
        if self.satellite is not None:
            self.satellite.discard()
        self._wins.clear()
        self._dirty.clear()
        self._new.clear()
        self._n = self._ndirty = 0
        self._complete = None


__all__ = ["MISSING", "Entry", "ObjectWindows", "Satellite"]
