"""Tumbling and hopping windows: fixed-size windows ``[start, start + size)`` that start every
``advance`` ms (tumbling: ``advance = size``).

The accumulators live as objects over the window store (:class:`ObjectWindows`: one pickle per
window per commit, closing without scans). Batches of count/sum/min/max/mean run on Arrow
(:class:`~operators.windowed_columnar.WindowBatch`), and with final emission the open windows
can live as one Arrow table (:class:`~operators.windowed_arrow.ArrowWindows`) until something
only the objects can hold comes; :func:`~operators.windowed_base.execution_label` says which.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]

from operators.base import Rows, push
from operators.columnar import plain_array, run_rows
from operators.windowed_arrow import ArrowWindows
from operators.windowed_base import SMALL_BATCHES, WindowedAggregateProcessor
from operators.windowed_columnar import Group, Partials, WindowBatch
from state.window import WindowStore
from state.window_objects import MISSING, ObjectWindows
from streams.core.errors import ProcessingError
from streams.core.serde import KEY
from streams.plan import nodes as plan
from streams.plan.windows import Hopping, Tumbling

_NO_KEY = object()


class TumblingWindowsProcessor(WindowedAggregateProcessor):
    """Tumbling and hopping windows over the store's :class:`ObjectWindows` (``objects``)."""

    spec: Tumbling | Hopping
    objects: ObjectWindows

    window_types = (Tumbling, Hopping)
    store_type = WindowStore
    needs_objects = True

    def _init_kind(self, node: plan.WindowedAggregate, objects: ObjectWindows | None) -> None:
        assert isinstance(node.window, Tumbling | Hopping) and objects is not None
        self.size = node.window.size_ms
        self.advance = node.window.advance_ms if isinstance(node.window, Hopping) else self.size
        self._init1 = node.aggs[0][1].init  # (of the first aggregation: merge_one)
        self._merges = [a.merge for _, a in node.aggs]
        # final results of count/sum/min/max/mean: the open windows as Arrow columns, until
        # something comes that only the objects can hold (operators.windowed_arrow)
        self._arrow: ArrowWindows | None = None
        if self._batch is not None and self._windows_on_arrow:
            self._arrow = ArrowWindows(objects, self._batch.aggs, active=self._batch_min == 1)
        self._arrow_failed = False  # (Arrow could not hold them: objects for good)
        self._small = 0  # consecutive small batches ("auto")

    # -- records ----------------------------------------------------------------------------
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

    def _columnar(self) -> WindowBatch:
        batch = self._batch
        if batch is None:
            raise AssertionError("a columnar batch reached a row-only windowed aggregation")
        return batch

    def process_columnar(self, batch: Any) -> None:
        columnar = self._columnar()
        if batch.n < self._batch_min and not self._on_arrow():
            run_rows(batch, self.process)
            return
        try:
            part = columnar.table_columnar(batch, self._batch_marks(batch))
        except Exception:  # Arrow could differ here: the row path decides (and reports)
            run_rows(batch, self.process)
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
        self._null_keys(part.null_keys)
        if late_idx:
            rows = batch.to_rows()
            self._emit_late([rows[i] for i in late_idx])
        push(self.results, out)

    def _aggregate(self, rows: Rows) -> tuple[Rows, Rows]:
        wm = self.watermark
        if self._batch is not None and (len(rows) >= self._batch_min or self._on_arrow()):
            try:
                part = self._batch.table(rows, self._marks_array([r[4] for r in rows]))
            except Exception:  # Arrow could differ here: record by record below
                self._give_up_arrow()  # (the records need the windows as objects)
            else:
                last_of = lambda i: (rows[i][0], rows[i][3], rows[i][4])  # noqa: E731
                self._null_keys(part.null_keys)
                return self._merge_partials(part, last_of), [rows[i] for i in part.late]
        marks = self._marks(rows)  # (None: every record against ``wm``)
        grace, nulls = self.spec.grace_ms, 0
        objects = self.objects
        get, add, init = objects.get, self._add, self._init
        size, advance = self.size, self.advance
        open_after = wm - grace  # a window is open while its end is after this
        update = self.emit == "update"
        accs: dict[tuple[bytes, int], list[Any]] = {}
        meta: dict[tuple[bytes, int], tuple[Any, int, Any, int]] = {}
        kbs: dict[Any, bytes] = {}  # str and int keys only: 1 == 1.0 == True encode apart
        late: Rows = []
        enc = KEY.serialize
        for i, row in enumerate(rows):
            k, v, t, h, o = row
            if k is None:
                nulls += 1
                continue
            if marks is not None:
                open_after = marks[i] - grace
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
        self._null_keys(nulls)
        out: Rows = []
        if update:
            for (kb, start), acc in accs.items():
                k, t, h, o = meta[(kb, start)]
                out.append((k, self._result(acc, start, start + size), t, h, o))
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
        return self._merge_groups(self._columnar().groups(part), meta)

    def _merge_groups(
        self, groups: list[Group], meta: Callable[[int], tuple[Any, Any, int]]
    ) -> Rows:
        """Merge each (key, window)'s partial aggregates into the store, once per batch."""
        objects, size = self.objects, self.size
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

    # -- time -------------------------------------------------------------------------------
    def _close(self, old: int, wm: int) -> Rows:
        size = self.size
        last_start = wm - self.spec.grace_ms - size
        if self._arrow is not None:
            table = self._arrow.close_until(last_start)
            if table is not None:
                self._emit_arrow(table, size)
                return []
        closed = self.objects.close_until(last_start)
        if self.emit != "final":
            return []
        dec = KEY.deserialize
        keys: dict[bytes, Any] = {}  # a key closes several (hopping) windows at once
        ks = []
        for kb, _, _ in closed:
            k = keys.get(kb, _NO_KEY)
            if k is _NO_KEY:
                k = keys[kb] = dec(kb)
            ks.append(k)
        if self._emit_columnar(ks, closed, size):
            return []
        return self._final_rows(ks, [s for _, s, _ in closed], [acc for _, _, acc in closed], size)

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


__all__ = ["TumblingWindowsProcessor"]
