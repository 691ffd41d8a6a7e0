"""Windowed aggregation: per (key, window) accumulators in a window or session store.

Time semantics (see docs/concepts/time-and-windows.md):

* a record belongs to the windows ``[start, end)`` that contain its event time;
* the watermark this operator knows (updated by the task between batches) decides lateness: a
  window whose ``end + grace <= watermark`` is closed; a record whose windows are all closed goes
  to the late output (exit 1) and changes nothing;
* ``emit="final"``: a closed window is emitted exactly once, when the watermark passes it;
  ``emit="update"``: each changed window is emitted once per micro-batch;
* closed windows are deleted from the store (tombstones go to the changelog).

Sessions: a record at ``t`` merges every session of its key with ``end >= t - gap`` and
``start <= t + gap``; a session ``[start, end]`` (both inclusive, ``end`` = its last event) closes
when the watermark reaches ``end + gap + grace``.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]

from operators.base import Processor, Rows, push
from operators.columnar import ColumnarBatch, plain_array, push_columnar
from operators.windowed_arrow import KINDS, ArrowWindows
from operators.windowed_columnar import Group, Partials, WindowBatch
from state.session import SessionStore
from state.window import WindowStore
from state.window_objects import MISSING, ObjectWindows
from streams.core.errors import ProcessingError
from streams.core.serde import KEY
from streams.plan import nodes as plan
from streams.plan.windows import Hopping, Session, Sliding, Tumbling

_MIN = -(1 << 63)
SMALL_BATCHES = 16  # ("auto") smaller batches in a row that give the windows back to the objects
_NO_KEY = object()
_dumps = pickle.dumps
_loads = pickle.loads


def _functions(
    node: plan.WindowedAggregate,
) -> tuple[
    Callable[[], list[Any]],
    Callable[[list[Any], Any], list[Any]],
    Callable[[list[Any], list[Any]], list[Any]],
    Callable[[list[Any], int, int], dict[str, Any]],
]:
    names = [n for n, _ in node.aggs]
    aggs = [a for _, a in node.aggs]
    inits, adds, results = [a.init for a in aggs], [a.add for a in aggs], [a.result for a in aggs]
    merges = [a.merge for a in aggs]

    def init() -> list[Any]:
        return [f() for f in inits]

    def add(acc: list[Any], v: Any) -> list[Any]:
        return [f(x, v) for f, x in zip(adds, acc, strict=True)]

    def merge(a: list[Any], b: list[Any]) -> list[Any]:
        return [m(x, y) for m, x, y in zip(merges, a, b, strict=True)]  # type: ignore[misc]

    def result(acc: list[Any], start: int, end: int) -> dict[str, Any]:
        out = {n: f(x) for n, f, x in zip(names, results, acc, strict=True)}
        out["window_start"] = start
        out["window_end"] = end
        return out

    if len(aggs) == 1:  # the common case, without the loops (called per record and window)
        (init1,), (add1,), (res1,), (name,) = inits, adds, results, names

        def init() -> list[Any]:
            return [init1()]

        def add(acc: list[Any], v: Any) -> list[Any]:
            return [add1(acc[0], v)]

        def result(acc: list[Any], start: int, end: int) -> dict[str, Any]:
            # (as the general form: a field named window_start/_end keeps its place)
            return {name: res1(acc[0]), "window_start": start, "window_end": end}

    return init, add, merge, result


class WindowedAggregateProcessor:
    """Tumbling and hopping windows over a :class:`WindowStore`, sessions over a
    :class:`SessionStore`. ``results`` get window results, ``late`` gets late records."""

    def __init__(
        self,
        node: plan.WindowedAggregate,
        store: WindowStore | SessionStore,
        results: list[Processor],
        late: list[Processor],
        *,
        execution: str = "row",
        objects: ObjectWindows | None = None,
    ) -> None:
        self.step = node.step
        self.spec = node.window
        self.emit = node.emit
        self.store = store
        # tumbling and hopping: the accumulators as objects over ``store`` (one pickle per
        # window per commit, closing without scans); sliding and sessions use ``store``
        if isinstance(node.window, Tumbling | Hopping) and objects is None:
            raise ValueError("tumbling and hopping windows need the store's ObjectWindows")
        self.objects = objects
        self.results, self.late = results, late
        self.watermark = _MIN
        self.late_records = 0
        self._init, self._add, self._merge, self._result = _functions(node)
        self._init1 = node.aggs[0][1].init  # (of the first aggregation: merge_one)
        # whole batches on Arrow (tumbling/hopping, count/sum/min/max/mean): from this many
        # records ("auto"), any ("columnar"), never ("row")
        self._batch = WindowBatch.for_node(node) if execution != "row" else None
        self._batch_min = 1 if execution == "columnar" else 512
        # final results of count/sum/min/max/mean: the open windows as Arrow columns, until
        # something comes that only the objects can hold (operators.windowed_arrow)
        self._arrow: ArrowWindows | None = None
        if (
            self._batch is not None
            and self.emit == "final"
            and objects is not None
            and all(a.kind in KINDS for _, a in node.aggs)
        ):
            self._arrow = ArrowWindows(objects, self._batch.aggs, active=self._batch_min == 1)
        self._arrow_failed = False  # (Arrow could not hold them: objects for good)
        self._small = 0  # consecutive small batches ("auto")
        self._merges = [a.merge for _, a in node.aggs]
        self._node_aggs = node.aggs
        self._names = [n for n, _ in node.aggs]
        self._results = [a.result for _, a in node.aggs]

    # -- records ----------------------------------------------------------------------------
    @property
    def accepts_columnar(self) -> bool:
        """Tumbling and hopping count/sum/min/max/mean: Arrow batches are aggregated as they
        are (a repartition topic's Arrow messages, a columnar chain), without rows."""
        return self._batch is not None

    def _on_arrow(self) -> bool:
        return self._arrow is not None and self._arrow.active

    def _use_arrow(self, n: int) -> bool:
        """Whether a batch of ``n`` records merges into the Arrow windows. Under ``auto`` they
        take over at a batch of ``_batch_min`` records and go back to the objects after
        ``SMALL_BATCHES`` smaller batches in a row (a small batch costs more on Arrow)."""
        a = self._arrow
        if a is None or self._arrow_failed:
            return False
        if self._batch_min > 1:  # auto
            if n >= self._batch_min:
                self._small = 0
                a.active = True  # (its first use takes the objects' windows over)
            elif a.active:
                self._small += 1
                if self._small >= SMALL_BATCHES:
                    a.materialize()
        return a.active

    def _give_up_arrow(self) -> None:
        if self._arrow is not None and not self._arrow_failed:
            self._arrow_failed = True
            self._arrow.materialize()

    def process_columnar(self, batch: Any) -> None:
        assert self._batch is not None
        if batch.n < self._batch_min and not self._on_arrow():
            self.process(batch.to_rows())
            return
        try:
            part = self._batch.table_columnar(batch, self.watermark)
        except Exception:  # Arrow could differ here: the row path decides (and reports)
            self.process(batch.to_rows())
            return
        late_idx = part.late
        meta: list[Any] = []  # (emit="update" only: each update carries its last record's)

        def last(i: int) -> tuple[Any, Any, int]:
            if not meta:
                meta.extend(batch.meta())
            return meta[0][i], meta[2][i], meta[3][i]

        try:
            out = self._merge_partials(part, last)
        except Exception as e:
            raise ProcessingError(f"{type(e).__name__}: {e}", step=self.step) from e
        if late_idx:
            rows = batch.to_rows()
            late = [rows[i] for i in late_idx]
            self.late_records += len(late)
            for c in self.late:
                c.process(late)
        push(self.results, out)

    def process(self, rows: Rows) -> None:
        try:
            if isinstance(self.spec, Session):
                out, late = self._sessions(rows)
            elif isinstance(self.spec, Sliding):
                out, late = self._sliding(rows)
            else:
                out, late = self._windows(rows)
        except ProcessingError:
            raise
        except Exception as e:
            raise ProcessingError(f"{type(e).__name__}: {e}", step=self.step) from e
        if late:
            self.late_records += len(late)
            for c in self.late:
                c.process(late)
        push(self.results, out)

    def _windows(self, rows: Rows) -> tuple[Rows, Rows]:
        spec, wm = self.spec, self.watermark
        assert isinstance(spec, Tumbling | Hopping)
        if self._batch is not None and (len(rows) >= self._batch_min or self._on_arrow()):
            try:
                part = self._batch.table(rows, wm)
            except Exception:  # Arrow could differ here: record by record below
                self._give_up_arrow()  # (the records need the windows as objects)
            else:
                last_of = lambda i: (rows[i][0], rows[i][3], rows[i][4])  # noqa: E731
                return self._merge_partials(part, last_of), [rows[i] for i in part.late]
        objects = self.objects
        assert objects is not None
        get, add, init = objects.get, self._add, self._init
        size = spec.size_ms
        advance = spec.advance_ms if isinstance(spec, Hopping) else size
        open_after = wm - spec.grace_ms  # a window is open while its end is after this
        update = self.emit == "update"
        accs: dict[tuple[bytes, int], list[Any]] = {}
        meta: dict[tuple[bytes, int], tuple[Any, int, Any, int]] = {}
        kbs: dict[Any, bytes] = {}  # str and int keys only: 1 == 1.0 == True encode apart
        late: Rows = []
        enc = KEY.serialize
        for row in rows:
            k, v, t, h, o = row
            if k is None:
                continue
            # the windows of t still open, ascending (spec.windows_for, less the closed ones):
            # starts s = last - j * advance with s > t - size and s + size > open_after
            last = t - t % advance
            lo = (t if t > open_after else open_after) - size
            if last <= lo:
                late.append(row)
                continue
            tk = type(k)
            if tk is int or tk is str:
                kb = kbs.get(k)
                if kb is None:
                    kb = kbs[k] = enc(k)  # type: ignore[assignment]
            else:
                kb = enc(k)
            assert kb is not None
            for start in range(last - (last - lo - 1) // advance * advance, last + 1, advance):
                acc = accs.get((kb, start))
                if acc is None:
                    acc = get(kb, start)
                    if acc is MISSING:
                        acc = init()
                accs[(kb, start)] = add(acc, v)
                if update:
                    meta[(kb, start)] = (k, start + size - 1, h, o)
        objects.put_many(accs.items())
        out: Rows = []
        if self.emit == "update":
            for (kb, start), acc in accs.items():
                end = start + spec.size_ms
                k, t, h, o = meta[(kb, start)]
                out.append((k, self._result(acc, start, end), t, h, o))
        return out, late

    def _merge_partials(self, part: Partials, meta: Callable[[int], tuple[Any, Any, int]]) -> Rows:
        """A batch's partial aggregates into the Arrow windows, else into the objects."""
        a = self._arrow
        if a is not None and self._use_arrow(part.n):
            try:
                a.merge(part.g)
                return []  # (final results only)
            except Exception:  # (unchanged: Arrow could differ, the objects take over)
                self._give_up_arrow()
        assert self._batch is not None
        return self._merge_groups(self._batch.groups(part), meta)

    def _merge_groups(
        self, groups: list[Group], meta: Callable[[int], tuple[Any, Any, int]]
    ) -> Rows:
        """Merge each (key, window)'s partial aggregates into the store, once per batch."""
        objects, size = self.objects, self.spec.size_ms  # type: ignore[union-attr]
        assert objects is not None
        enc, merges, init = KEY.serialize, self._merges, self._init
        kbs: dict[Any, bytes] = {}
        pairs: list[tuple[bytes, int]] = []
        for g in groups:
            kb = kbs.get(g.key)
            if kb is None:
                kb = enc(g.key)
                assert kb is not None
                kbs[g.key] = kb
            pairs.append((kb, g.start))
        accs: list[list[Any]] = []
        if len(merges) == 1:  # (one aggregation: lookup, merge and write in one pass)
            (m0,) = merges
            assert m0 is not None
            init0 = self._init1
            accs = objects.merge_one(pairs, [g.partial[0] for g in groups], m0, init0)
        else:
            for acc, g in zip(objects.get_many(pairs), groups, strict=True):
                if acc is MISSING:
                    acc = init()
                accs.append([m(a, p) for m, a, p in zip(merges, acc, g.partial, strict=True)])  # type: ignore[misc]
            objects.put_many(zip(pairs, accs, strict=True))
        out: Rows = []
        if self.emit == "update":
            for g, acc in zip(groups, accs, strict=True):
                k, h, o = meta(g.last)  # (the key, headers, offset of its last record)
                end = g.start + size
                out.append((k, self._result(acc, g.start, end), end - 1, h, o))
        return out

    def _sessions(self, rows: Rows) -> tuple[Rows, Rows]:
        spec, wm = self.spec, self.watermark
        assert isinstance(spec, Session)
        store = self.store
        assert isinstance(store, SessionStore)
        gap, grace = spec.gap_ms, spec.grace_ms
        enc = KEY.serialize
        changed: dict[tuple[bytes, int, int], list[Any]] = {}
        keys: dict[bytes, Any] = {}
        late: Rows = []
        last_meta: tuple[Any, int] = ((), 0)
        for row in rows:
            k, v, t, h, o = row
            if k is None:
                continue
            kb = enc(k)
            assert kb is not None
            keys[kb] = k
            start, end, acc = t, t, self._add(self._init(), v)
            merged = []
            for s, e, raw in list(store.find_sessions(kb, t - gap, t + gap)):
                merged.append((s, e))
                other = changed.pop((kb, s, e), None)
                acc = self._merge(other if other is not None else _loads(raw), acc)
                start, end = min(start, s), max(end, e)
            if end + gap + grace <= wm:
                late.append(row)
                continue
            for s, e in merged:
                store.remove(kb, s, e)
            store.put(kb, start, end, _dumps(acc, protocol=5))
            changed[(kb, start, end)] = acc
            last_meta = (h, o)
        out: Rows = []
        if self.emit == "update":
            h, o = last_meta
            for (kb, s, e), acc in changed.items():
                out.append((keys[kb], self._result(acc, s, e), e, h, o))
        return out, late

    # -- sliding windows: a buffer of records per (key, time); windows computed at close -----
    def _sliding(self, rows: Rows) -> tuple[Rows, Rows]:
        spec, wm = self.spec, self.watermark
        assert isinstance(spec, Sliding)
        store = self.store
        assert isinstance(store, WindowStore)
        d, grace = spec.time_difference_ms, spec.grace_ms
        enc = KEY.serialize
        late: Rows = []
        touched: list[tuple[Any, bytes, int, Any, int]] = []
        for row in rows:
            k, v, t, h, o = row
            if k is None:
                continue
            if t + d + 1 + grace <= wm:  # every window that could hold it has closed
                late.append(row)
                continue
            kb = enc(k)
            assert kb is not None
            raw = store.get(kb, t)
            vals = [] if raw is None else _loads(raw)
            vals.append(v)
            store.put(kb, t, _dumps(vals, protocol=5))
            touched.append((k, kb, t, h, o))
        out: Rows = []
        if self.emit == "update":  # the window ending at each record: "as of this record"
            for k, kb, t, h, o in touched:
                acc = self._init()
                for _, raw in store.fetch(kb, t - d, t):
                    for v in _loads(raw):
                        acc = self._add(acc, v)
                out.append((k, self._result(acc, t - d, t), t, h, o))
        return out, late

    def _close_sliding(self, old: int, wm: int) -> Rows:
        """Emit (``final``) the windows whose ``end + 1 + grace`` the watermark just passed,
        then drop records no open window can contain."""
        spec = self.spec
        assert isinstance(spec, Sliding)
        store = self.store
        assert isinstance(store, WindowStore)
        d, grace = spec.time_difference_ms, spec.grace_ms
        lo_end = max(old - grace, _MIN + 2 * d + 2)  # windows ending in [lo_end, hi_end] close
        hi_end = wm - grace - 1
        out: Rows = []
        if self.emit == "final" and hi_end >= lo_end:
            by_key: dict[bytes, list[tuple[int, list[Any]]]] = {}
            for kb, t, raw in store.fetch_all(lo_end - 2 * d - 1, hi_end):
                by_key.setdefault(kb, []).append((t, _loads(raw)))
            dec = KEY.deserialize
            closing: list[tuple[int, bytes, int]] = []
            for kb, recs in by_key.items():
                times = [t for t, _ in recs]
                wins = {(t - d, t) for t in times if lo_end <= t <= hi_end}
                for t in times:
                    e = t + 1 + d
                    if lo_end <= e <= hi_end and any(t < r <= e for r in times):
                        wins.add((t + 1, e))
                closing.extend((e, kb, s) for s, e in wins)
            for e, kb, s in sorted(closing):
                acc = self._init()
                for t, vals in by_key[kb]:
                    if s <= t <= e:
                        for v in vals:
                            acc = self._add(acc, v)
                out.append((dec(kb), self._result(acc, s, e), e, (), -1))
        store.expire(wm - d - grace)
        return out

    # -- time -------------------------------------------------------------------------------
    def on_watermark(self, wm: int) -> None:
        """The watermark advanced: emit (``final``) and delete the windows it closed."""
        if wm <= self.watermark:
            return
        old, self.watermark = self.watermark, wm
        out: Rows = []
        dec = KEY.deserialize
        if isinstance(self.spec, Sliding):
            out = self._close_sliding(old, wm)
        elif isinstance(self.spec, Session):
            store = self.store
            assert isinstance(store, SessionStore)
            before = wm - self.spec.gap_ms - self.spec.grace_ms + 1
            if self.emit == "final":
                for kb, s, e, raw in list(store.fetch_all_ending_before(before)):
                    out.append((dec(kb), self._result(_loads(raw), s, e), e, (), -1))
            store.expire(before)
        else:
            assert self.objects is not None
            size = self.spec.size_ms
            last_start = wm - self.spec.grace_ms - size
            if self._arrow is not None:
                table = self._arrow.close_until(last_start)
                if table is not None:
                    self._emit_arrow(table, size)
                    return
            closed = self.objects.close_until(last_start)
            if self.emit == "final":
                keys: dict[bytes, Any] = {}  # a key closes several (hopping) windows at once
                ks = []
                for kb, _, _ in closed:
                    k = keys.get(kb, _NO_KEY)
                    if k is _NO_KEY:
                        k = keys[kb] = dec(kb)
                    ks.append(k)
                if self._emit_columnar(ks, closed, size):
                    return
                out = self._final_rows(
                    ks, [s for _, s, _ in closed], [acc for _, _, acc in closed], size
                )
        push(self.results, out)

    def _columnar_out(self, n: int) -> bool:
        """Whether ``n`` closed windows leave as one Arrow batch: a child takes one (columnar
        mode) and the result fields are not named as the window's bounds."""
        names = self._names
        return (
            self._batch is not None
            and n >= self._batch_min
            and any(getattr(c, "accepts_columnar", False) for c in self.results)
            and "window_start" not in names
            and "window_end" not in names
        )

    def _emit_columnar(self, keys: list[Any], closed: list[Any], size: int) -> bool:
        """Closed windows as one Arrow batch, for children that take one (columnar mode): the
        values are the row path's dicts, column by column. False where they are not plain
        columns (an aggregation's result of mixed or nested types: the rows go instead)."""
        if not self._columnar_out(len(closed)):
            return False
        try:
            cols = {
                n: plain_array([res(acc[j]) for _, _, acc in closed], n)
                for j, (n, res) in enumerate(zip(self._names, self._results, strict=True))
            }
        except Exception:
            return False
        self._push_closed(cols, keys, [s for _, s, _ in closed], size)
        return True

    def _emit_arrow(self, t: Any, size: int) -> None:
        """Emit the closed windows of the Arrow table (:class:`ArrowWindows`)."""
        n = len(t)
        if not n:
            return
        assert self._arrow is not None
        if self._columnar_out(n):
            cols: dict[str, Any] = {}
            for i, ((name, a), (k, _)) in enumerate(
                zip(self._node_aggs, self._arrow.specs, strict=True)
            ):
                if k == "mean":
                    sums, counts = t[f"a{i}s"].to_pylist(), t[f"a{i}c"].to_pylist()
                    res = [a.result((x, c)) for x, c in zip(sums, counts, strict=True)]
                    cols[name] = plain_array(res, name)
                else:  # (result is the accumulator; a column of nulls is pa.array's null type)
                    col = t[f"a{i}"].combine_chunks()
                    cols[name] = pa.nulls(n) if col.null_count == n else col
            self._push_closed(cols, t["k"].to_pylist(), t["s"].to_pylist(), size)
            return
        accs = self._arrow.accumulators(t)
        push(self.results, self._final_rows(t["k"].to_pylist(), t["s"].to_pylist(), accs, size))

    def _final_rows(
        self, keys: list[Any], starts: list[int], accs: list[list[Any]], size: int
    ) -> Rows:
        """Closed windows' final results as rows (the window's last millisecond, no headers)."""
        result = self._result
        return [
            (k, result(acc, s, s + size), s + size - 1, (), -1)
            for k, s, acc in zip(keys, starts, accs, strict=True)
        ]

    def _push_closed(
        self, cols: dict[str, Any], keys: list[Any], starts: list[int], size: int
    ) -> None:
        cols["window_start"] = pa.array(starts, pa.int64())
        cols["window_end"] = pa.array([s + size for s in starts], pa.int64())
        n = len(starts)
        batch = ColumnarBatch(
            cols,
            n,
            keys=keys,
            ts=[s + size - 1 for s in starts],
            headers=[()] * n,
            offsets=[-1] * n,
        )
        push_columnar(self.results, batch)


__all__ = ["WindowedAggregateProcessor"]
