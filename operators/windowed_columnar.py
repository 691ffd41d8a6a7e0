"""Aggregation of a whole batch on Arrow: window assignment and partial aggregates.

For tumbling and hopping windows whose aggregations are all ``count``, ``sum``, ``min``,
``max``, ``mean`` or ``argmax`` of a column expression, a batch is turned into one Arrow table
of (record, window) pairs, grouped by (key, window start), and each group's partial aggregate
is merged into the store's accumulator: one read and one write per (key, window) per batch, no
Python per record (argmax keeps the fields of the records holding each group's maximum: a join
of the pairs with the groups' maxima). The result (store contents, emitted updates and their
order, timestamps, late records) is the row path's
(:meth:`TumblingWindowsProcessor._aggregate`), which runs instead wherever Arrow could
differ: float sums (addition order), float min/max/argmax (NaN, signed zeros), int64
overflow, keys or values of mixed or nested types.

>>> import pyarrow as pa
>>> from streams import agg, windows
>>> from streams.plan import nodes as plan
>>> node = plan.WindowedAggregate(step="w", parents=("p",), window=windows.tumbling(ms=10),
...     aggs=(("n", agg.count()), ("s", agg.sum("x"))), single=False, emit="update",
...     store=plan.StoreSpec("w", kind="window"))
>>> wb = WindowBatch.for_node(node)
>>> rows = [("a", {"x": 1}, 3, (), 0), ("b", {"x": 5}, 4, (), 1), ("a", {"x": 2}, 12, (), 2)]
>>> groups, late = wb.partials(rows, -1)
>>> [(g.key, g.start, g.partial) for g in groups]
[('a', 0, [1, 1]), ('b', 0, [1, 5]), ('a', 10, [1, 2])]
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from operators.base import Rows
from operators.expr_arrow import (
    Unsupported,
    columnar_ok,
    evaluate_arrow,
    kind,
    positions,
    to_array,
)
from streams.core.types import get_field, record_type
from streams.plan import nodes as plan
from streams.plan.expr import Expr
from streams.plan.windows import Hopping, Tumbling

_KINDS = ("count", "sum", "min", "max", "mean", "argmax")
_MAX = (1 << 63) - 1


class Group(NamedTuple):
    """One (key, window) of a batch: its partial aggregates and the row that last touched it.
    (A tuple: a batch makes one per (key, window), and a frozen dataclass costs ~4x to build.)"""

    key: Any
    start: int
    partial: list[Any]
    last: int  # index (in the batch) of the group's last record


class Partials(NamedTuple):
    """A batch's (record, window) pairs and their group-by: per (key ``k``, window start
    ``s``) the first and last record (``i_min``, ``i_max``), ``count_all`` and each
    aggregation ``i``'s ``v{i}_sum``/``_min``/``_max``/``_count``; ``late``: positions of the
    late records."""

    pairs: Any
    g: Any
    late: list[int]
    cols: dict[str, Any]
    n: int
    null_keys: int = 0


class WindowBatch:
    """Computes a batch's groups; see the module doc."""

    def __init__(self, node: plan.WindowedAggregate, window: Tumbling | Hopping) -> None:
        self.node, self.window = node, window
        self.aggs = [(a.kind, a.of) for _, a in node.aggs]
        self.keeps = [a.keep for _, a in node.aggs]
        self.needed = frozenset().union(
            *(e.columns() for _, e in self.aggs if e is not None),
            *(k for k in self.keeps if k is not None),
        )

    @classmethod
    def for_node(cls, node: plan.WindowedAggregate) -> WindowBatch | None:
        """The columnar form of ``node``, or None when it has none."""
        if not isinstance(node.window, Tumbling | Hopping) or not _columnar_aggs(node.aggs):
            return None
        return cls(node, node.window)

    def partials(self, rows: Rows, watermark: int) -> tuple[list[Group], Rows]:
        """The batch's groups in the order the row path creates them, and its late records.

        Raises where Arrow could answer differently (the caller then runs the row path)."""
        part = self.table(rows, watermark)
        return self.groups(part), [rows[i] for i in part.late]

    def partials_columnar(self, batch: Any, watermark: int) -> tuple[list[Group], list[int]]:
        """:meth:`partials` of a :class:`~operators.columnar.ColumnarBatch` (no rows built);
        the late records as positions in the batch."""
        part = self.table_columnar(batch, watermark)
        return self.groups(part), part.late

    def table(self, rows: Rows, watermark: Any) -> Partials:
        """The batch's partial aggregates as an Arrow table (see :class:`Partials`)."""
        keys = pa.array([r[0] for r in rows])
        ts = pa.array([r[2] for r in rows], pa.int64())
        cols = _columns(rows, self.needed)
        return self._table(keys, ts, cols, len(rows), watermark)

    def table_columnar(self, batch: Any, watermark: Any) -> Partials:
        """:meth:`table` of a :class:`~operators.columnar.ColumnarBatch`."""
        if batch.scalar is not None and self.needed:
            raise Unsupported("fields of a non-dict value")  # (row-wise, v.get fails)
        b = batch.copy()
        b.ensure(self.needed)  # (a batch converted from rows: the fields it lacks)
        meta = b.meta()
        keys = to_array(b.key if b.key is not None else pa.array(meta[0]), b.n)
        ts = pa.array(meta[1], pa.int64())
        cols = {}
        for name in self.needed:
            c = b.get(name)
            cols[name] = pa.nulls(b.n) if c is None else to_array(c, b.n)
        return self._table(keys, ts, cols, b.n, watermark)

    def _table(self, keys: Any, ts: Any, cols: dict[str, Any], n: int, watermark: Any) -> Partials:
        if kind(keys.type) not in ("str", "int", "null"):
            raise Unsupported(f"keys of type {keys.type}")
        values = [_values(k, e, cols, n) for k, e in self.aggs]
        w = self.window
        advance = w.advance_ms if isinstance(w, Hopping) else w.size_ms
        last = pc.subtract_checked(ts, pc.modulo_checked(ts, advance))
        keyed = pc.is_valid(keys)
        # an open window ends after this; ``watermark`` is one for all records or, per
        # record, the watermark before each (operators.event_time)
        if isinstance(watermark, int):
            closed_before: Any = max(watermark - w.grace_ms, -(1 << 63))
        else:
            floor = pc.max_element_wise(watermark, -(1 << 63) + w.grace_ms)
            closed_before = pc.subtract(floor, w.grace_ms)
        if all(k != "argmax" for k, _ in self.aggs):  # (argmax needs each record's pairs)
            return self._pregrouped(keys, ts, last, keyed, closed_before, values, cols, n)
        parts, any_open = [], None
        idx = positions(n)
        for j in range((w.size_ms - 1) // advance + 1):
            start = pc.subtract_checked(last, j * advance)
            end = pc.add_checked(start, w.size_ms)
            ok = pc.and_(pc.and_(keyed, pc.greater(end, ts)), pc.greater(end, closed_before))
            any_open = ok if any_open is None else pc.or_(any_open, ok)
            cols_j = {"k": keys, "s": start, "i": idx}
            cols_j.update({f"v{i}": v for i, v in enumerate(values) if v is not None})
            parts.append(pa.table(cols_j).filter(ok))
        assert any_open is not None
        late_idx = pc.indices_nonzero(pc.and_(keyed, pc.invert(any_open))).to_pylist()
        pairs = pa.concat_tables(parts)
        g = pairs.group_by(["k", "s"], use_threads=False)
        g = g.aggregate(_aggregations(self.aggs))
        return Partials(pairs, g, late_idx, cols, n, n - (pc.sum(keyed).as_py() or 0))

    def _pregrouped(
        self,
        keys: Any,
        ts: Any,
        last: Any,
        keyed: Any,
        closed_before: Any,
        values: list[Any],
        cols: dict[str, Any],
        n: int,
    ) -> Partials:
        """:meth:`_table` without a row per (record, window): the records aggregate by
        (key, newest window, number of open windows) first, and those groups go into each of
        their windows (a hopping window of 5 advances: 5 rows per group, not per record)."""
        w = self.window
        advance = w.advance_ms if isinstance(w, Hopping) else w.size_ms
        nwin = (w.size_ms - 1) // advance + 1
        # window j (start last - j * advance) is open while its end is after the record's
        # time and after closed_before: j = 0 .. m - 1, m = (top - x) // advance + 1
        top = pc.add_checked(last, w.size_ms - 1)  # (the newest window's end, less 1)
        if isinstance(closed_before, int):
            closed_before = pa.scalar(closed_before, pa.int64())
        x = pc.max_element_wise(ts, closed_before, pc.subtract_checked(top, nwin * advance))
        d = pc.subtract_checked(top, x)  # (at most nwin * advance: no overflow below)
        m = pc.min_element_wise(pc.add(pc.divide(d, advance), 1), nwin)
        m = pc.if_else(pc.and_(keyed, pc.greater_equal(d, 0)), m, 0)
        opened = pc.greater(m, 0)
        late_idx = pc.indices_nonzero(pc.and_(keyed, pc.invert(opened))).to_pylist()
        t = {"k": keys, "l": last, "m": m, "i": positions(n)}
        t.update({f"v{i}": v for i, v in enumerate(values) if v is not None})
        g1 = pa.table(t).filter(opened).group_by(["k", "l", "m"], use_threads=False)
        g1 = g1.aggregate(_aggregations(self.aggs))
        names = [c for c in g1.column_names if c not in ("k", "l", "m")]
        parts = []
        for j in range(nwin):
            gj = g1 if j == 0 else g1.filter(pc.greater(g1["m"], j))
            start = gj["l"] if j == 0 else pc.subtract_checked(gj["l"], j * advance)
            parts.append(pa.table({"k": gj["k"], "s": start, **{c: gj[c] for c in names}}))
        nulls = n - (pc.sum(keyed).as_py() or 0)
        if nwin == 1:  # tumbling: one window per group already
            return Partials(None, parts[0], late_idx, cols, n, nulls)
        nn = pc.ScalarAggregateOptions(min_count=1)
        again = [(c, _MERGE[c.rsplit("_", 1)[1]], nn) for c in names]
        g = pa.concat_tables(parts).group_by(["k", "s"], use_threads=False).aggregate(again)
        g = g.rename_columns(
            [c.rsplit("_", 1)[0] if c not in ("k", "s") else c for c in g.column_names]
        )
        return Partials(None, g, late_idx, cols, n, nulls)

    def groups(self, part: Partials) -> list[Group]:
        """Each (key, window)'s partial accumulators, shaped as the aggregations' own."""
        pairs, g, _, cols, n, _ = part
        # the row path's order (first touched first) matters for emitted updates only; final
        # results leave at close, so window by window (the store's writes: one dict per start)
        order = ("i_min", "s") if self.node.emit == "update" else ("s", "i_min")
        g = g.sort_by([(c, "ascending") for c in order])
        res = {name: g.column(name).to_pylist() for name in g.column_names}
        ks, ss, lasts = res["k"], res["s"], res["i_max"]
        if len(self.aggs) == 1 and self.aggs[0][0] == "count":  # (without _partial per group)
            counts = res["count_all"]
            return [Group(k, s, [c], i) for k, s, c, i in zip(ks, ss, counts, lasts, strict=True)]
        ties = [
            _ties(pairs, g, i, keep, cols, n) if k == "argmax" and keep is not None else None
            for i, ((k, _), keep) in enumerate(zip(self.aggs, self.keeps, strict=True))
        ]
        return [
            Group(ks[x], ss[x], _partial(res, x, self.aggs, ties), lasts[x])
            for x in range(g.num_rows)
        ]


class KeyedBatch:
    """A keyed (non-windowed) aggregation's batch on Arrow: partial aggregates per key, in the
    order keys first appear; each with the batch's largest timestamp and last record."""

    def __init__(self, node: plan.Aggregate) -> None:
        self.aggs = [(a.kind, a.of) for _, a in node.aggs]
        self.needed = frozenset().union(*(e.columns() for _, e in self.aggs if e is not None))

    @classmethod
    def for_node(cls, node: plan.Aggregate) -> KeyedBatch | None:
        if any(a.kind == "argmax" for _, a in node.aggs):
            return None  # (the keyed path keeps no rows per group: argmax runs row-wise)
        return cls(node) if _columnar_aggs(node.aggs) else None

    def partials(self, rows: Rows) -> list[tuple[Any, list[Any], int, int]]:
        """``(key, partials, max timestamp, index of the last record)`` per key; null keys are
        left out. Raises where Arrow could answer differently."""
        n = len(rows)
        keys = pa.array([r[0] for r in rows])
        if kind(keys.type) not in ("str", "int", "null"):
            raise Unsupported(f"keys of type {keys.type}")
        cols = _columns(rows, self.needed)
        table = {"k": keys, "i": positions(n)}
        table["t"] = pa.array([r[2] for r in rows], pa.int64())
        for i, (k, e) in enumerate(self.aggs):
            v = _values(k, e, cols, n)
            if v is not None:
                table[f"v{i}"] = v
        t = pa.table(table).filter(pc.is_valid(keys))
        aggs = [*_aggregations(self.aggs), ("t", "max")]
        g = t.group_by(["k"], use_threads=False).aggregate(aggs).sort_by("i_min")
        res = {name: g.column(name).to_pylist() for name in g.column_names}
        return [
            (res["k"][x], _partial(res, x, self.aggs), res["t_max"][x], res["i_max"][x])
            for x in range(g.num_rows)
        ]


#: how partial aggregates of one (key, window) combine (by the first aggregation's suffix)
_MERGE = {"min": "min", "max": "max", "all": "sum", "sum": "sum", "count": "sum"}


def _columnar_aggs(aggs: tuple[tuple[str, Any], ...]) -> bool:
    for _, a in aggs:
        if a.kind not in _KINDS or (a.kind != "count" and a.of is None):
            return False
        if a.kind == "argmax" and not a.keep:
            return False
        if a.of is not None and not columnar_ok(a.of):
            return False
    return True


def _aggregations(specs: list[tuple[str, Expr | None]]) -> list[Any]:
    aggs: list[Any] = [("i", "min"), ("i", "max"), ([], "count_all")]
    nn = pc.ScalarAggregateOptions(min_count=1)
    for i, (k, _) in enumerate(specs):
        if k in ("sum", "min", "max"):
            aggs.append((f"v{i}", k, nn))
        elif k == "argmax":
            aggs.append((f"v{i}", "max", nn))
        elif k == "mean":
            aggs += [(f"v{i}", "sum"), (f"v{i}", "count")]
    return aggs


def _partial(
    res: dict[str, list[Any]],
    x: int,
    specs: list[tuple[str, Expr | None]],
    ties: list[dict[tuple[Any, int], list[dict[str, Any]]] | None] | None = None,
) -> list[Any]:
    """Group ``x``'s partial accumulators, shaped as the aggregations' own."""
    partial: list[Any] = []
    for i, (k, _) in enumerate(specs):
        if k == "count":
            partial.append(res["count_all"][x])
        elif k == "argmax":
            top = res[f"v{i}_max"][x]
            tied = None if ties is None else ties[i]
            assert tied is not None
            partial.append(None if top is None else (top, tied[(res["k"][x], res["s"][x])]))
        elif k == "mean":
            partial.append((res[f"v{i}_sum"][x] or 0, res[f"v{i}_count"][x]))
        else:
            partial.append(res[f"v{i}_{k}"][x])
    return partial


def _ties(
    pairs: Any, g: Any, i: int, keep: tuple[str, ...], cols: dict[str, Any], n: int
) -> dict[tuple[Any, int], list[dict[str, Any]]]:
    """argmax ``i``: per (key, window), the kept fields of the records holding its maximum,
    in record order (as the row path appends ties)."""
    v, top = f"v{i}", f"v{i}_max"
    if g.num_rows == 0:
        return {}
    joined = pairs.select(["k", "s", "i", v]).join(
        g.select(["k", "s", top]), keys=["k", "s"], use_threads=False
    )
    hit = joined.filter(pc.equal(joined[v], joined[top])).sort_by([("i", "ascending")])
    idx = hit["i"].combine_chunks()
    kept = [pc.take(cols[f] if f in cols else pa.nulls(n), idx).to_pylist() for f in keep]
    out: dict[tuple[Any, int], list[dict[str, Any]]] = {}
    for key, start, *xs in zip(hit["k"].to_pylist(), hit["s"].to_pylist(), *kept, strict=True):
        out.setdefault((key, start), []).append(dict(zip(keep, xs, strict=True)))
    return out


def _columns(rows: Rows, needed: frozenset[str]) -> dict[str, Any]:
    from operators.columnar import plain_array

    kinds = set(type(r[1]) for r in rows)
    if needed and not all(t is dict or record_type(t) is not None for t in kinds):
        raise Unsupported("values that are not records")
    vals = [r[1] for r in rows]
    if kinds == {dict}:  # (the common case: no per-value dispatch)
        return {n: plain_array([v.get(n) for v in vals], n) for n in sorted(needed)}
    return {n: plain_array([get_field(v, n) for v in vals], n) for n in sorted(needed)}


def _values(k: str, e: Expr | None, cols: dict[str, Any], n: int) -> Any:
    """The values aggregation ``k`` reads, where Arrow's result is exactly Python's."""
    if e is None:
        return None
    v = evaluate_arrow(e, cols, n)
    vk = kind(v.type)
    if vk == "null":
        return v.cast(pa.int64())
    if vk == "int":
        if k in ("sum", "mean") and v.null_count < n:
            mm = pc.min_max(v)
            top = max(abs(mm["min"].as_py()), abs(mm["max"].as_py()))
            if top * n > _MAX:  # Arrow's sums wrap: the row path adds exactly
                raise Unsupported("a sum could leave int64")
        return v
    if vk == "str" and k in ("min", "max", "argmax"):
        return v
    raise Unsupported(f"{k} of {v.type} values")


__all__ = ["Group", "KeyedBatch", "Partials", "WindowBatch"]
