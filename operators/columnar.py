"""Columnar chains: a run of expression-only steps over an Arrow batch.

A :class:`ColumnarBatch` holds record values as Arrow columns plus, per row, where it came from:
either the row batch it was converted from (``rows``; then only the fields the chain reads are
converted, and leaving the chain rebuilds each value as its original dict plus the columns the
chain computed, so untouched fields keep their exact Python objects), or a source that decoded
straight into Arrow (``keys``, ``ts``, ``headers``, ``offsets`` lists). Filters shrink the
columns and record the surviving positions; nothing goes back to Python until the chain's exit
hands the batch to a child that only takes rows.

A :class:`ColumnarChain` fails with an exception wherever Arrow could answer differently from
Python (:class:`~operators.expr_arrow.Unsupported`, an int64 overflow, a division by zero, mixed
types); :class:`ColumnarChainProcessor` then runs that batch through the row chain, so both modes
give the same records (and the row chain reports real errors with its error policy).

>>> from streams.plan import nodes as plan
>>> from streams.plan.expr import col
>>> f = plan.Filter(step="big", parents=("s",), predicate=plan.as_fn("big", "p", col("n") > 1))
>>> m = plan.as_fn("w", "c", col("n") * 10)
>>> w = plan.WithColumns(step="w", parents=("big",), columns=(("m", m),))
>>> c = ColumnarChain([f, w])
>>> rows = [("a", {"n": 1, "x": "p"}, 0, (), 0), ("b", {"n": 2, "x": "q"}, 5, (), 1)]
>>> c(ColumnarBatch.from_rows(rows, c.needed)).to_rows()
[('b', {'n': 2, 'x': 'q', 'm': 20}, 5, (), 1)]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from operators.base import Rows, takes_columnar
from operators.event_time import CarriedMarks
from operators.expr_arrow import (
    Unsupported,
    columnar_ok,
    evaluate_arrow,
    int64_array,
    kind,
    to_array,
)
from operators.fused import ChainProcessor, missing_fields, report_missing
from streams.core.types import RecordType, as_mapping, get_field, record_type
from streams.plan import nodes as plan
from streams.plan.expr import Expr

_PLAIN = ("null", "bool", "int", "str", "float")


class ColumnarBatch:
    """Record values as Arrow columns; see the module doc for the two origins.

    Filters do not copy columns: ``base`` keeps the columns as they arrived and ``pos`` the
    surviving positions; :meth:`get` takes a base column at ``pos`` only when something reads it
    (a filter on ``type`` need not move the long ``description`` strings of every record).
    """

    __slots__ = (
        "base",
        "cols",
        "headers",
        "key",
        "keys",
        "marks",
        "n",
        "names",
        "offsets",
        "overlay",
        "pos",
        "record",
        "rows",
        "scalar",
        "ts",
    )

    def __init__(
        self,
        cols: dict[str, Any],
        n: int,
        *,
        rows: Rows | None = None,
        keys: list[Any] | None = None,
        ts: list[int] | None = None,
        headers: list[Any] | None = None,
        offsets: list[int] | None = None,
    ) -> None:
        self.base, self.n, self.rows = cols, n, rows
        self.keys, self.ts, self.headers, self.offsets = keys, ts, headers, offsets
        self.cols: dict[str, Any] = {}  # columns at the current positions (computed, taken)
        self.names = list(cols)  # the value's fields, in order (when it is the columns)
        self.pos: Any = None  # positions (into base, rows, the lists) of the rows still here
        #: names computed on top of the original dicts; None: the value is exactly the columns
        self.overlay: list[str] | None = [] if rows is not None else None
        self.key: Any = None  # a key computed by key_by
        self.scalar: Any = None  # a non-dict value computed by map_values
        #: the watermark before each record, when the records carry theirs (a repartition
        #: topic's Arrow messages, whose records share one offset): operators.event_time
        self.marks: CarriedMarks | None = None
        #: the record class of the values (a typed source's): rows leaving Arrow are objects
        #: of it again; None: dicts (a step that makes new values clears it)
        self.record: RecordType | None = None

    @classmethod
    def from_rows(cls, rows: Rows, needed: frozenset[str]) -> ColumnarBatch:
        """Convert the fields ``needed`` of dict values; raises if a field is not plainly
        typed (mixed ints and floats would come back as floats, nested values changed)."""
        values = [r[1] for r in rows]
        if not all(t is dict or record_type(t) is not None for t in set(map(type, values))):
            raise Unsupported("values that are not records")  # (their errors are row-wise)
        cols = {
            name: plain_array([get_field(v, name) for v in values], name) for name in sorted(needed)
        }
        return cls(cols, len(rows), rows=rows)

    def ensure(self, needed: frozenset[str]) -> None:
        """Convert the fields ``needed`` that an upstream chain did not (rows origin)."""
        if self.rows is None or self.overlay is None:
            return  # the columns are the whole value: a field not there is null
        missing = [n for n in needed if n not in self.cols and n not in self.base]
        if missing:
            idx = self.positions()
            src = self.rows if idx is None else [self.rows[i] for i in idx]
            for name in missing:
                self.cols[name] = plain_array([get_field(r[1], name) for r in src], name)

    def get(self, name: str) -> Any:
        """Column ``name`` at the current positions (None: no such field)."""
        a = self.cols.get(name)
        if a is None:
            a = self.base.get(name)
            if a is None:
                return None
            if self.pos is not None:
                a = a.take(self.pos)
            self.cols[name] = a
        return a

    def key_array(self) -> Any:
        """The record keys as an array (what ``key()`` reads); raises where Arrow would not
        hold them exactly (keys of mixed or non-plain types)."""
        if self.key is not None:
            return self.key
        if self.rows is not None:
            idx = self.positions()
            src = self.rows if idx is None else [self.rows[i] for i in idx]
            return plain_array([r[0] for r in src], "key()")
        assert self.keys is not None
        idx = self.positions()
        return plain_array(self.keys if idx is None else [self.keys[i] for i in idx], "key()")

    def conform(self, schema: Any) -> None:
        """Give the batch ``schema``'s fields, in its order and types (absent: null; others
        dropped): a batch that arrived as Arrow, as a source with that schema would decode it."""
        cols = {}
        for f in schema:
            a = self.base.get(f.name)
            if a is None:
                a = pa.nulls(self.n, f.type)
            elif a.type != f.type:
                a = a.cast(f.type)
            cols[f.name] = a
        self.base, self.names = cols, list(cols)

    def copy(self) -> ColumnarBatch:
        b = ColumnarBatch(self.base, self.n, rows=self.rows, keys=self.keys, ts=self.ts)
        b.headers, b.offsets, b.pos, b.key, b.scalar, b.marks = (
            self.headers,
            self.offsets,
            self.pos,
            self.key,
            self.scalar,
            self.marks,
        )
        b.cols, b.names = dict(self.cols), list(self.names)
        b.overlay = None if self.overlay is None else list(self.overlay)
        b.record = self.record
        return b

    # -- leaving Arrow ----------------------------------------------------------------------
    def positions(self) -> list[int] | None:
        return None if self.pos is None else self.pos.to_pylist()

    def columns(self) -> dict[str, Any]:
        """The value's fields as arrays (when the value is exactly the columns)."""
        return {name: to_array(self.get(name), self.n) for name in self.names}

    def values(self) -> list[Any]:
        """The record values when they are exactly the columns (or the map_values result)."""
        if self.scalar is not None:
            return list(to_array(self.scalar, self.n).to_pylist())
        if not self.names:
            return [{} for _ in range(self.n)]
        return list(pa.Table.from_pydict(self.columns()).to_pylist())

    def meta(self) -> tuple[list[Any], list[int], list[Any], list[int]]:
        """Keys, timestamps, headers and offsets of the rows still here."""
        idx = self.positions()
        if self.rows is not None:
            src = self.rows if idx is None else [self.rows[i] for i in idx]
            keys = [r[0] for r in src] if self.key is None else self.key.to_pylist()
            return keys, [r[2] for r in src], [r[3] for r in src], [r[4] for r in src]
        assert self.keys is not None and self.ts is not None
        assert self.headers is not None and self.offsets is not None

        def take(xs: list[Any]) -> list[Any]:
            return xs if idx is None else [xs[i] for i in idx]

        keys = take(self.keys) if self.key is None else self.key.to_pylist()
        return keys, take(self.ts), take(self.headers), take(self.offsets)

    def offset_array(self) -> Any:
        """The source offsets of the rows still here, as an int64 array."""
        if self.rows is not None:
            idx = self.positions()
            src = self.rows if idx is None else [self.rows[i] for i in idx]
            return pa.array([r[4] for r in src], pa.int64())
        assert self.offsets is not None
        if self.pos is not None and len(self.pos) * 8 < len(self.offsets):  # (a few left)
            offsets = self.offsets
            return pa.array([offsets[i] for i in self.pos.to_pylist()], pa.int64())
        offs = int64_array(self.offsets)
        return offs if self.pos is None else offs.take(self.pos)

    def to_rows(self) -> Rows:
        if self.rows is not None and self.overlay is not None and self.scalar is None:
            idx = self.positions()
            src = self.rows if idx is None else [self.rows[i] for i in idx]
            if not self.overlay and self.key is None:
                return list(src)
            keys = [r[0] for r in src] if self.key is None else self.key.to_pylist()
            if not self.overlay:
                return [(k, r[1], r[2], r[3], r[4]) for k, r in zip(keys, src, strict=True)]
            names = self.overlay
            cols = zip(*(to_array(self.get(n), self.n).to_pylist() for n in names), strict=True)
            return [
                (k, {**as_mapping(r[1]), **dict(zip(names, xs, strict=True))}, r[2], r[3], r[4])
                for k, r, xs in zip(keys, src, cols, strict=True)
            ]
        keys, ts, hs, offs = self.meta()
        values = self.values()
        rec = self.record
        if rec is not None and self.scalar is None and set(rec.required()) <= set(self.names):
            values = rec.from_dicts(values)  # (a pruned batch's stay dicts)
        return list(zip(keys, values, ts, hs, offs, strict=True))


def plain_array(xs: list[Any], name: str) -> Any:
    """``xs`` as an Arrow array when Arrow gives the same values back (ints, floats, strings,
    bools, nulls: not ints and floats mixed, not nested); raises :class:`Unsupported` else.

    >>> plain_array([1, None], "n").to_pylist()
    [1, None]
    """
    arr = pa.array(xs)
    k = kind(arr.type)
    if k not in _PLAIN or (k == "float" and int in set(map(type, xs))):
        raise Unsupported(f"field {name!r} holds {arr.type} values")
    return arr


def _mask(x: Any, n: int) -> Any:
    k = kind(x.type)
    if k == "null":
        return pa.nulls(n, pa.bool_())
    if k != "bool":
        raise Unsupported(f"a filter predicate of type {x.type}")
    return to_array(x, n)


def _filter(b: ColumnarBatch, mask: Any) -> None:
    if mask.null_count == 0 and pc.all(mask).as_py() is not False:
        return  # everything stays
    b.cols = {k: pc.filter(to_array(v, b.n), mask) for k, v in b.cols.items()}  # (taken lazily)
    b.pos = (
        pc.indices_nonzero(pc.fill_null(mask, False)) if b.pos is None else pc.filter(b.pos, mask)
    )
    if b.key is not None:
        b.key = pc.filter(b.key, mask)
    if b.scalar is not None:
        b.scalar = pc.filter(b.scalar, mask)
    b.n = len(b.pos)


def _expr(fn: plan.Fn) -> Expr:
    assert isinstance(fn.obj, Expr)
    return fn.obj


def _check_dict(b: ColumnarBatch) -> None:
    if b.scalar is not None:  # row-wise, v.get(...) on a non-dict value fails
        raise Unsupported("a field of a non-dict value")


Step = Callable[[ColumnarBatch], None]


# -- per node kind: a step over a batch (:mod:`operators.registry` maps node classes here) --
def filter_step(node: plan.Filter) -> Step:
    pred, neg = _expr(node.predicate), node.negate

    def filt(b: ColumnarBatch) -> None:
        _check_dict(b)
        m = _mask(evaluate_arrow(pred, b, b.n), b.n)
        _filter(b, pc.invert(m) if neg else m)

    return filt


def _columns_step(columns: Sequence[tuple[str, plan.Fn]], select: bool) -> Step:
    cols = [(n, _expr(f)) for n, f in columns]

    def with_columns(b: ColumnarBatch) -> None:
        _check_dict(b)
        new = {n: evaluate_arrow(e, b, b.n) for n, e in cols}
        b.record = None  # (new values: dicts)
        if select:
            b.base, b.cols, b.names, b.overlay = {}, new, list(new), None
            return
        b.cols.update(new)
        b.names += [n for n in new if n not in b.names]
        if b.overlay is not None:
            b.overlay += [n for n in new if n not in b.overlay]

    return with_columns


def with_columns_step(node: plan.WithColumns) -> Step:
    return _columns_step(node.columns, select=False)


def select_step(node: plan.Select) -> Step:
    return _columns_step(node.columns, select=True)


def map_values_step(node: plan.MapValues) -> Step:
    e = _expr(node.fn)

    def map_values(b: ColumnarBatch) -> None:
        _check_dict(b)
        b.scalar = evaluate_arrow(e, b, b.n)
        b.base, b.cols, b.names, b.overlay, b.record = {}, {}, [], None, None

    return map_values


def key_by_step(node: plan.KeyBy) -> Step:
    ke = _expr(node.key)

    def key_by(b: ColumnarBatch) -> None:
        _check_dict(b)
        b.key = evaluate_arrow(ke, b, b.n)

    return key_by


def no_step(node: plan.Node) -> Step:
    """A step that passes the batch on as it is (merge, branch and late outputs)."""
    return lambda b: None


def _step_maker(node: plan.Node) -> Callable[[Any], Step] | None:
    from operators.registry import spec_for  # (the registry imports this module)

    return spec_for(node).columnar


def _step(node: plan.Node) -> Step:
    make = _step_maker(node)
    assert make is not None
    return make(node)


def _fns(node: plan.Node) -> list[plan.Fn]:
    """The functions of a step (its predicate, function, key or columns)."""
    out = [
        fn for f in ("predicate", "fn", "key") if isinstance(fn := getattr(node, f, None), plan.Fn)
    ]
    return out + [fn for _, fn in getattr(node, "columns", ())]


def chain_is_columnar(nodes: Sequence[plan.Node]) -> bool:
    """Every step has a columnar form (an expression step or a no-op), every expression has
    a columnar form; a chain may end in a ``branch`` of such predicates."""
    for n in nodes:
        if isinstance(n, plan.Branch) and n is nodes[-1]:
            fns = list(n.predicates)
        elif _step_maker(n) is None:
            return False
        else:
            fns = _fns(n)
        if not all(isinstance(f.obj, Expr) and columnar_ok(f.obj) for f in fns):
            return False
    # (a branch output or a merge alone passes its parents' columnar batches on as they are)
    return any(not isinstance(n, plan.LateOutput) for n in nodes)


def _reads(node: plan.Node) -> frozenset[str]:
    out: frozenset[str] = frozenset()
    for fn in getattr(node, "predicates", ()):
        out |= _expr(fn).columns()
    for f in ("predicate", "fn", "key"):
        fn = getattr(node, f, None)
        if isinstance(fn, plan.Fn) and isinstance(fn.obj, Expr):
            out |= fn.obj.columns()
    for _, fn in getattr(node, "columns", ()):
        out |= _expr(fn).columns()
    return out


class ColumnarChain:
    """``chain(batch) -> batch`` (the input batch is not changed)."""

    def __init__(self, nodes: Sequence[plan.Node]) -> None:
        if not chain_is_columnar(nodes):
            raise ValueError("a columnar chain takes expression steps only")
        self.steps = tuple(n.step for n in nodes)
        last = nodes[-1]
        #: the predicates of a final ``branch`` (None: one exit)
        self.branch = [_expr(f) for f in last.predicates] if isinstance(last, plan.Branch) else None
        body = nodes[:-1] if self.branch is not None else nodes
        self._steps = [_step(n) for n in body]
        #: the fields read from the input values (converted when the input is rows)
        self.needed = frozenset().union(*(_reads(n) for n in nodes))
        pa.scalar(0)  # (the first one imports pandas, ~1 s: at compile time, not on a batch)

    def __call__(self, batch: ColumnarBatch) -> ColumnarBatch:
        b = batch.copy()
        b.ensure(self.needed)
        for step in self._steps:
            if b.n == 0:
                break
            step(b)
        return b

    def split(self, b: ColumnarBatch) -> list[ColumnarBatch]:
        """A final ``branch``: each record to the first exit whose predicate holds (null is
        not true, as Python's ``if``), the rest nowhere; one batch per exit."""
        assert self.branch is not None
        _check_dict(b)
        left = None  # the records no earlier predicate took
        out = []
        for pred in self.branch:
            m = pc.fill_null(_mask(evaluate_arrow(pred, b, b.n), b.n), False)
            take = m if left is None else pc.and_(m, left)
            left = pc.invert(m) if left is None else pc.and_(left, pc.invert(m))
            part = b.copy()
            if b.n:
                _filter(part, take)
            out.append(part)
        return out


class ColumnarChainProcessor:
    """Runs a chain on Arrow, or row-wise (``row``: the chain's row processor) where Arrow
    declines. Row batches are converted only under ``always`` (``execution="columnar"``);
    otherwise only batches that arrive columnar (a source decoding to Arrow) run on Arrow."""

    accepts_columnar = True
    __slots__ = ("always", "chain", "row")

    def __init__(self, row: ChainProcessor, chain: ColumnarChain, *, always: bool) -> None:
        self.row, self.chain, self.always = row, chain, always

    def process(self, rows: Rows) -> None:
        if not self.always or not rows:
            self.row.process(rows)
            return
        try:
            batch = ColumnarBatch.from_rows(rows, self.chain.needed)
        except Exception:  # not plain dicts of plain values: row-wise
            self.row.process(rows)
            return
        self.process_columnar(batch)

    def process_columnar(self, batch: ColumnarBatch) -> None:
        if self.row.drops is not None and batch.n:
            self._count_missing(batch)
        try:
            out = self.chain(batch)
            parts = [out] if self.chain.branch is None else self.chain.split(out)
        except Exception:  # Arrow declined (or Python raises too): the row chain decides
            run_rows(batch, self.row.run)
            return
        for part, children in zip(parts, self.row.exits, strict=True):
            if part.n:
                push_columnar(children, part)

    def _count_missing(self, b: ColumnarBatch) -> None:
        """Count the fields the chain reads that no record of ``b`` has (as the row chain
        does): free when the value is the columns, the row check when it wraps rows."""
        drops, reads = self.row.drops, self.row.chain.reads
        assert drops is not None
        if b.scalar is not None:
            return  # (not records with fields: the chain fails and the row chain reports)
        absent: list[tuple[str, tuple[str, ...]]] = []
        if b.rows is not None and b.overlay is not None:
            made = set(b.overlay)  # (computed by a chain upstream: not in the dicts)
            reads = tuple((s, tuple(f for f in fs if f not in made)) for s, fs in reads)
            absent = [(s, fs) for s, fs, _ in missing_fields(b.rows, reads)]
        else:
            names = set(b.names)
            for step, fields in reads:
                if gone := tuple(f for f in fields if f not in names):
                    absent.append((step, gone))
        for step, fields in absent:
            report_missing(drops, step, fields, b.n)


def run_rows(batch: ColumnarBatch, process: Callable[[Rows], None]) -> None:
    """``process(batch.to_rows())``; records that carry their watermarks go in runs whose
    marks the rows' lookups by offset find (:meth:`operators.event_time.EventTime.run_rows`),
    or, to a processor with ``process_marked(rows, marks)``, with one mark per row."""
    if batch.marks is None:
        process(batch.to_rows())
        return
    marked = getattr(getattr(process, "__self__", None), "process_marked", None)
    if marked is not None:  # (takes each row's mark as given: no runs)
        marked(batch.to_rows(), batch.marks.at(batch.pos).to_pylist())
    else:
        batch.marks.run_rows(batch.to_rows(), batch.pos, process)


def push_columnar(children: Sequence[Any], batch: ColumnarBatch) -> None:
    """Hand a columnar batch to children that take one, rows (converted once) to the rest."""
    rows: Rows | None = None
    for c in children:
        if takes_columnar(c):
            c.process_columnar(batch)
        elif batch.marks is not None:
            run_rows(batch, c.process)
        else:
            if rows is None:
                rows = batch.to_rows()
            c.process(rows)


__all__ = [
    "ColumnarBatch",
    "ColumnarChain",
    "ColumnarChainProcessor",
    "chain_is_columnar",
    "filter_step",
    "key_by_step",
    "map_values_step",
    "no_step",
    "plain_array",
    "push_columnar",
    "run_rows",
    "select_step",
    "with_columns_step",
]
