"""Session windows of a whole Arrow batch: the batch's own sessions first, then the store.

A batch's records of one key that are at most ``gap`` ms apart belong to one session whatever
else happens, so for count/sum/min/max/mean (merges that do not depend on order) the batch is
sorted by (key, time) on Arrow and aggregated per *micro-session*; only those go through the
session merging of :class:`~operators.windowed_session.SessionWindowsProcessor`, one per
micro-session instead of one per record. This holds while no record of the batch can be late
(each one's ``t + gap + grace`` after the watermark) and every record is judged against the
same watermark; other batches, and argmax (its ties follow record order), go row by row.

>>> import pyarrow as pa
>>> from streams import agg
>>> specs = [("count", None), ("sum", agg.sum("x").of)]
>>> keys, ts = pa.array(["a", "b", "a", "a"]), pa.array([0, 1, 5, 50], pa.int64())
>>> ms, nulls = micro_sessions(specs, keys, ts, {"x": pa.array([1, 2, 3, 4])}, 4, gap=10)
>>> [(m.key, m.start, m.end, m.partial) for m in ms], nulls
([('a', 0, 5, [2, 4]), ('b', 1, 1, [1, 2]), ('a', 50, 50, [1, 4])], 0)
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from operators.expr_arrow import Unsupported, kind, positions
from operators.windowed_columnar import _aggregations, _partial, _values
from streams.plan.expr import Expr

KINDS = ("count", "sum", "min", "max", "mean")


class Micro(NamedTuple):
    """A batch's session of one key: first and last event time, partial accumulators."""

    key: Any
    start: int
    end: int
    partial: list[Any]


def session_specs(node: Any) -> list[tuple[str, Expr | None]] | None:
    """The aggregations of a session window node as ``(kind, expression)``, when its batches
    can run on Arrow (final emission, order-free aggregations of expressions); else None."""
    if node.emit != "final":
        return None
    specs: list[tuple[str, Expr | None]] = []
    for _, a in node.aggs:
        if a.kind not in KINDS or (a.kind != "count" and not isinstance(a.of, Expr)):
            return None
        specs.append((a.kind, a.of))
    return specs


def micro_sessions(
    specs: list[tuple[str, Expr | None]], keys: Any, ts: Any, cols: dict[str, Any], n: int, gap: int
) -> tuple[list[Micro], int]:
    """The batch's sessions, in the order of their first records, and the number of records
    without a key. Raises where Arrow could differ from Python."""
    if kind(keys.type) not in ("str", "int", "null"):
        raise Unsupported(f"keys of type {keys.type}")
    values = [_values(k, e, cols, n) for k, e in specs]
    t = {"k": keys, "t": ts, "i": positions(n)}
    t.update({f"v{i}": v for i, v in enumerate(values) if v is not None})
    table = pa.table(t).filter(pc.is_valid(keys))
    m = table.num_rows
    if not m:
        return [], n
    table = table.sort_by([("k", "ascending"), ("t", "ascending"), ("i", "ascending")])
    k, tt = table["k"].combine_chunks(), table["t"].combine_chunks()
    near = pc.less_equal(pc.subtract_checked(tt.slice(1), tt.slice(0, m - 1)), gap)
    same = pc.and_(pc.equal(k.slice(1), k.slice(0, m - 1)), near)
    new = pa.concat_arrays([pa.array([True]), pc.invert(same)])
    sid = pc.cumulative_sum(pc.cast(new, pa.int64()))
    aggs = [*_aggregations(specs), ("t", "min"), ("t", "max")]
    g = table.append_column("sid", sid).group_by(["sid", "k"], use_threads=False).aggregate(aggs)
    g = g.sort_by([("i_min", "ascending")])
    res = {name: g.column(name).to_pylist() for name in g.column_names}
    out = [
        Micro(res["k"][x], res["t_min"][x], res["t_max"][x], _partial(res, x, specs))
        for x in range(g.num_rows)
    ]
    return out, n - m


__all__ = ["KINDS", "Micro", "micro_sessions", "session_specs"]
