"""The open windows of a columnar tumbling/hopping aggregation as one Arrow table.

With final emission and only ``count``, ``sum``, ``min``, ``max`` and ``mean``, nothing needs a
window's accumulator as a Python object until the window closes or a commit writes it. So the
windows live as columns: ``k`` (the key), ``s`` (window start), ``dirty`` (written since the
last commit), ``logged`` (the bytes store and its changelog have it) and the accumulators
(``a{i}``; ``a{i}s``/``a{i}c`` for a mean's sum and count). A batch's partial aggregates
(:class:`~operators.windowed_columnar.Partials`) merge in with one full outer join on
``(k, s)`` and element-wise kernels (``add_checked``: an int64 overflow raises), closing is a
filter and a sort, and closed windows leave as Arrow columns: no Python per (key, window)
except at a commit (one pickle per dirty window, as :class:`~state.window_objects.ObjectWindows`
writes) and for the tombstones of closed windows that were logged.

The table stands in for the store's :class:`~state.window_objects.ObjectWindows` as its
*satellite*: the view hands its windows over (:meth:`ObjectWindows.release`), flushes and
discards the table with its own, and takes the windows back (:meth:`materialize`) as soon as
anything Arrow can't do exactly comes up: keys not all of one of ``str``/``int``, values
whose types change, an overflow, a batch the row path has to run, more windows than the view
may hold (the aggregation then keeps them as objects for good); under ``execution="auto"``
also while batches are small (:data:`operators.windowed.SMALL_BATCHES`). The store, the
changelog and every result are the same as without the table.

>>> from state.backend import MemoryBackend
>>> from state.window import WindowStore
>>> from state.window_objects import ObjectWindows
>>> import pyarrow as pa
>>> view = ObjectWindows(WindowStore(MemoryBackend()))
>>> t = ArrowWindows(view, [("count", None)])
>>> g = pa.table({"k": ["a", "b", "a"], "s": [0, 0, 10], "count_all": [2, 1, 5]})
>>> t.merge(g); t.merge(pa.table({"k": ["a"], "s": [0], "count_all": [3]}))
>>> view.dirty_count
3
>>> closed = t.close_until(0)
>>> closed["k"].to_pylist(), closed["a0"].to_pylist()
(['a', 'b'], [5, 1])
>>> view.flush_objects(); [(k, s) for k, s, _ in view.raw.fetch_all(0, 99)]
[(b'\\x04a', 10)]
"""

from __future__ import annotations

import pickle
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from operators.expr_arrow import Unsupported, kind
from state.window_objects import Entry, ObjectWindows
from streams.core.serde import KEY

KINDS = ("count", "sum", "min", "max", "mean")


class ArrowWindows:
    """One store's open windows as columns; see the module doc. ``specs``: ``(kind, expr)``
    per aggregation, kinds in :data:`KINDS`."""

    def __init__(
        self, objects: ObjectWindows, specs: list[tuple[str, Any]], *, active: bool = True
    ) -> None:
        if any(k not in KINDS for k, _ in specs):
            raise ValueError(f"ArrowWindows takes {', '.join(KINDS)}")
        self.objects, self.specs = objects, specs
        #: whether the windows are the table's (False: the object view's; setting it True makes
        #: the next use take them over)
        self.active = active
        self.table: Any = None
        self._ndirty = 0
        self._names = [n for i, (k, _) in enumerate(specs) for n in _acc_columns(i, k)]
        objects.satellite = self

    # -- what the object view asks (state.window_objects.Satellite) ---------------------------
    @property
    def dirty_count(self) -> int:
        return self._ndirty

    def flush(self) -> None:
        """Pickle the dirty windows into the bytes store (the view's commit calls this)."""
        t = self.table
        if t is None or not self._ndirty:
            return
        dirty = t["dirty"]
        d = t.filter(dirty)
        dumps = pickle.dumps
        new: list[tuple[bytes, int, bytes]] = []
        known: list[tuple[bytes, int, bytes]] = []
        for kb, s, acc, _, logged in self._entries(d):
            (known if logged else new).append((kb, s, dumps(acc, protocol=5)))
        raw = self.objects.raw
        raw.put_many(new)
        raw.put_many(known, new=False)
        logged = pc.or_(t["logged"], dirty)
        t = t.set_column(t.schema.get_field_index("logged"), "logged", logged)
        self.table = t.set_column(
            t.schema.get_field_index("dirty"), "dirty", pa.repeat(False, len(t))
        )
        self._ndirty = 0
        if len(self.table) > self.objects.max_objects:  # (the view bounds memory)
            self.materialize()

    def discard(self) -> None:
        self.table = None
        self._ndirty = 0

    # -- what the aggregation asks --------------------------------------------------------------
    def _sync(self) -> bool:
        """Take over what the object view holds (a store restored under it, windows written
        before); False when the windows must stay objects."""
        if not self.active:
            return False
        entries = self.objects.release()
        if entries is None:  # (the view can't hold every window: it reads through the store)
            self.active = False
            return False
        if entries and (self.table is not None or not self._adopt(entries)):
            self.objects.adopt(entries)
            self.materialize()
            return False
        return True

    def merge(self, g: Any) -> None:
        """Merge a batch's partial aggregates (a :class:`Partials` group-by); raises (and
        changes nothing) where Arrow could differ from the row path."""
        if not self._sync():
            raise Unsupported("the windows are objects")
        if g.num_rows == 0:
            return
        p = {"k": g["k"], "s": g["s"], "_touched": pa.repeat(True, g.num_rows)}
        for i, (k, _) in enumerate(self.specs):
            if k == "count":
                p[f"p{i}"] = g["count_all"]
            elif k == "mean":
                p[f"p{i}s"] = pc.fill_null(g[f"v{i}_sum"], 0)
                p[f"p{i}c"] = g[f"v{i}_count"]
            else:
                p[f"p{i}"] = g[f"v{i}_{k}"]
        part = pa.table(p)
        if kind(part["k"].type) not in ("str", "int"):
            raise Unsupported(f"keys of type {part['k'].type}")
        t = self.table
        if t is None:
            t = self._empty(part)
        elif t["k"].type != part["k"].type:
            raise Unsupported(f"keys of type {part['k'].type} after {t['k'].type}")
        j = t.join(part, keys=["k", "s"], join_type="full outer", use_threads=False)
        out = {"k": j["k"], "s": j["s"]}
        touched = pc.is_valid(j["_touched"])
        out["dirty"] = pc.or_(pc.fill_null(j["dirty"], False), touched)
        out["logged"] = pc.fill_null(j["logged"], False)
        for i, (k, _) in enumerate(self.specs):
            for suffix in ("s", "c") if k == "mean" else ("",):
                a, b = _align(j[f"a{i}{suffix}"], j[f"p{i}{suffix}"])
                if k in ("count", "mean"):
                    v = pc.add_checked(pc.fill_null(a, 0), pc.fill_null(b, 0))
                elif k == "sum":
                    v = pc.coalesce(pc.add_checked(a, b), a, b)
                elif k == "min":
                    v = pc.min_element_wise(a, b, skip_nulls=True)
                else:
                    v = pc.max_element_wise(a, b, skip_nulls=True)
                out[f"a{i}{suffix}"] = v
        self.table = pa.table(out)
        self._ndirty = pc.sum(out["dirty"]).as_py() or 0

    def close_until(self, last_start: int) -> Any:
        """Remove the windows with ``start <= last_start``; returns them as a table sorted by
        start, then key (the bytes store's order: str and int keys encode order-preserving),
        or None when the windows are objects (the caller closes through the view)."""
        if not self._sync():
            return None
        t = self.table
        if t is None:
            return pa.table({"k": pa.array([], pa.string()), "s": pa.array([], pa.int64())})
        closing = pc.less_equal(t["s"], last_start)
        closed = t.filter(closing)
        if not len(closed):
            return closed
        self.table = t.filter(pc.invert(closing))
        self._ndirty = pc.sum(self.table["dirty"]).as_py() or 0
        logged = closed.filter(closed["logged"])
        if len(logged):  # tombstones for what the changelog has
            enc = KEY.encode
            self.objects.raw.delete_many(
                [
                    (enc(k), s)
                    for k, s in zip(logged["k"].to_pylist(), logged["s"].to_pylist(), strict=True)
                ]
            )
        return closed.sort_by([("s", "ascending"), ("k", "ascending")])

    def materialize(self) -> None:
        """Give every window back to the object view (``active`` is False after)."""
        self.active = False
        t, self.table = self.table, None
        self._ndirty = 0
        if t is not None and len(t):
            self.objects.adopt(self._entries(t))

    # -- conversions ----------------------------------------------------------------------------
    def accumulators(self, t: Any) -> list[list[Any]]:
        """The accumulators of ``t``'s windows as the aggregations' own objects."""
        if not len(t):
            return []
        cols = []
        for i, (k, _) in enumerate(self.specs):
            if k == "mean":
                cols.append(
                    list(zip(t[f"a{i}s"].to_pylist(), t[f"a{i}c"].to_pylist(), strict=True))
                )
            else:
                cols.append(t[f"a{i}"].to_pylist())
        return [list(acc) for acc in zip(*cols, strict=True)] if cols else []

    def _entries(self, t: Any) -> list[Entry]:
        """``t``'s windows as the object view's entries (encoded key, start, accumulator,
        dirty, logged)."""
        enc = KEY.encode
        return [
            (enc(k), s, acc, dirty, logged)
            for k, s, dirty, logged, acc in zip(
                t["k"].to_pylist(),
                t["s"].to_pylist(),
                t["dirty"].to_pylist(),
                t["logged"].to_pylist(),
                self.accumulators(t),
                strict=True,
            )
        ]

    def _adopt(self, entries: list[Entry]) -> bool:
        """The view's windows as the table (False: Arrow can't hold them exactly)."""
        try:
            keys = pa.array([KEY.deserialize(e[0]) for e in entries])
            if kind(keys.type) not in ("str", "int"):
                return False
            cols: dict[str, Any] = {
                "k": keys,
                "s": pa.array([e[1] for e in entries], pa.int64()),
                "dirty": pa.array([e[3] for e in entries], pa.bool_()),
                "logged": pa.array([e[4] for e in entries], pa.bool_()),
            }
            for i, (k, _) in enumerate(self.specs):
                if k == "mean":
                    cols[f"a{i}s"] = pa.array([e[2][i][0] for e in entries], pa.int64())
                    cols[f"a{i}c"] = pa.array([e[2][i][1] for e in entries], pa.int64())
                else:
                    xs = [e[2][i] for e in entries]
                    if any(type(x) not in (int, str, type(None)) for x in xs):
                        return False  # (a float: the row path wrote it)
                    cols[f"a{i}"] = pa.array(xs, pa.int64() if k == "count" else None)
        except (pa.ArrowException, OverflowError, TypeError, IndexError):
            return False
        self.table = pa.table(cols)
        self._ndirty = sum(1 for e in entries if e[3])
        return True

    def _empty(self, part: Any) -> Any:
        cols: dict[str, Any] = {
            "k": pa.array([], part["k"].type),
            "s": pa.array([], pa.int64()),
            "dirty": pa.array([], pa.bool_()),
            "logged": pa.array([], pa.bool_()),
        }
        for name in self._names:
            cols[name] = pa.array([], part["p" + name[1:]].type)
        return pa.table(cols)


def _acc_columns(i: int, k: str) -> list[str]:
    return [f"a{i}s", f"a{i}c"] if k == "mean" else [f"a{i}"]


def _align(a: Any, b: Any) -> tuple[Any, Any]:
    """The state's and the batch's column in one type: a column of nulls takes the other's
    type; other differences (int and str: the row path raises) raise."""
    if a.type == b.type:
        return a, b
    if pa.types.is_null(a.type):
        return a.cast(b.type), b
    if pa.types.is_null(b.type):
        return a, b.cast(a.type)
    raise Unsupported(f"values of type {b.type} after {a.type}")


__all__ = ["KINDS", "ArrowWindows"]
