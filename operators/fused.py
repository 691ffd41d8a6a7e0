"""Operator fusion: a run of stateless steps becomes one generated Python loop over a batch.

Per-record interpreter overhead is what makes Python streaming slow (one ``asyncio.Queue`` hop per
record caps near 0.3M records/s here, a plain function chain reaches ~1.9M). So a chain like
``filter -> map_values -> key_by`` is compiled into straight-line source with the column
expressions inlined and user callables called directly, and runs once per batch::

    def _chain(rows):
        o0 = []; a0 = o0.append
        for k, v, t, h, o in rows:
            if not (None if (_t1 := v.get('amount')) is None else _t1 > 500): continue
            v = _f2(v)
            k = v.get('card')
            a0((k, v, t, h, o))
        return (o0,)

Errors cost nothing until they happen: the traceback's line number inside the generated code
says which step failed, and the frame's locals give the record's offset.

A field a step reads by name that no record of a batch has (a typo where no schema is known)
is counted as ``missing_field`` in the task's drops, with one warning per step naming it. The
check costs one dict lookup per such field per batch on the first record; only when that
lacks the field is the rest of the batch looked at (see :func:`missing_fields`).

>>> from streams.plan import nodes as plan
>>> from streams.plan.expr import col
>>> pred = plan.as_fn("big", "predicate", col("n") > 1)
>>> f = ChainFn([plan.Filter(step="big", parents=("s",), predicate=pred)])
>>> f([("a", {"n": 1}, 0, (), 0), ("b", {"n": 2}, 0, (), 1)])
([('b', {'n': 2}, 0, (), 1)],)
"""

from __future__ import annotations

import itertools
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from operators.base import Processor, Rows
from operators.drops import Drops
from operators.errors import ErrorPolicy
from streams.core.errors import ProcessingError
from streams.core.types import as_mapping
from streams.plan import nodes as plan
from streams.plan.expr import Access, CodeGen

_ids = itertools.count()


def _call(fn: plan.Fn, g: CodeGen) -> str:
    """Source for applying ``fn`` to the current record."""
    if fn.is_expr:
        return fn.obj.py(g)  # type: ignore[union-attr]
    name = g.const(fn.obj, "f")
    return f"{name}(v)" if fn.nargs == 1 else f"{name}(k, v)"


def _dict_literal(cols: Sequence[tuple[str, plan.Fn]], g: CodeGen) -> str:
    return ", ".join(f"{n!r}: {_call(f, g)}" for n, f in cols)


# -- per node kind: the lines of one step, and whether the lines after it nest one deeper
# (:mod:`operators.registry` maps each fusable node class to one of these) -------------------
Lines = tuple[list[str], bool]


def map_lines(node: plan.Map, g: CodeGen) -> Lines:
    return [f"k, v = {_call(node.fn, g)}"], False


def map_values_lines(node: plan.MapValues, g: CodeGen) -> Lines:
    return [f"v = {_call(node.fn, g)}"], False


def filter_lines(node: plan.Filter, g: CodeGen) -> Lines:
    p = _call(node.predicate, g)
    if node.negate:
        t = g.tmp()
        return [f"if ({t} := {p}) is None or {t}: continue"], False
    return [f"if not {p}: continue"], False


def flat_map_lines(node: plan.FlatMap, g: CodeGen) -> Lines:
    return [f"for k, v in {_call(node.fn, g)}:"], True


def flat_map_values_lines(node: plan.FlatMapValues, g: CodeGen) -> Lines:
    # the loop rebinds v per child but not k: restore k, or a key change made for one
    # child would leak into its siblings
    saved = g.tmp()
    return [f"{saved} = k", f"for v in {_call(node.fn, g)}:", f"    k = {saved}"], True


def peek_lines(node: plan.Peek, g: CodeGen) -> Lines:
    return [_call(node.fn, g)], False


def key_by_lines(node: plan.KeyBy, g: CodeGen) -> Lines:
    return [f"k = {_call(node.key, g)}"], False


def with_columns_lines(node: plan.WithColumns, g: CodeGen) -> Lines:
    if g.access == "dict":
        return [f"v = {{**v, {_dict_literal(node.columns, g)}}}"], False
    m = g.const(as_mapping, "m")  # (a typed record becomes a dict with the new fields)
    return [f"v = {{**{m}(v), {_dict_literal(node.columns, g)}}}"], False


def select_lines(node: plan.Select, g: CodeGen) -> Lines:
    return [f"v = {{{_dict_literal(node.columns, g)}}}"], False


def table_map_values_lines(node: plan.TableMapValues, g: CodeGen) -> Lines:
    # a table's change stream: deletions stay None
    return [f"if v is not None: v = {_call(node.fn, g)}"], False


def table_filter_lines(node: plan.TableFilter, g: CodeGen) -> Lines:
    p = _call(node.predicate, g)
    if node.negate:
        t = g.tmp()
        return [f"if v is not None and (({t} := {p}) is None or {t}): v = None"], False
    return [f"if v is not None and not {p}: v = None"], False


def no_lines(node: plan.Node, g: CodeGen) -> Lines:
    """A step that passes records on as they are (merge, branch and late outputs)."""
    return [], False


def _node_lines(node: plan.Node, g: CodeGen) -> Lines:
    from operators.registry import spec_for  # (the registry imports this module)

    gen = spec_for(node).fused
    if gen is None:  # pragma: no cover - the compiler fuses fusable steps only
        raise TypeError(f"step '{node.step}': {node.kind} cannot be fused")
    return gen(node, g)


#: per step of a chain, the fields it reads from the chain's input values
Reads = tuple[tuple[str, tuple[str, ...]], ...]


def input_reads(nodes: Sequence[plan.Node]) -> Reads:
    """The fields each step reads that must come from the chain's input values: not made by
    an earlier ``with_columns``, and only up to the first step that makes new values (a
    ``select``'s fields are known, so checked when it was built; a function's are not) or
    that passes on a subset (a filter: the records without a field after it may be the
    ones it dropped, so their absence says nothing).

    >>> from streams.plan.expr import col
    >>> f = plan.Filter(step="people", parents=("s",),
    ...                 predicate=plan.as_fn("people", "p", col("type") == "person"))
    >>> k = plan.KeyBy(step="by-id", parents=("people",), key=plan.as_fn("by-id", "k", "id"))
    >>> input_reads([f, k])
    (('people', ('type',)),)
    """
    out = []
    made: set[str] = set()
    for n in nodes:
        reads = n.reads() - made
        if reads:
            out.append((n.step, tuple(sorted(reads))))
        if isinstance(n, plan.WithColumns):
            made.update(c for c, _ in n.columns)
        elif not n.keeps_values or n.selects:
            break
    return tuple(out)


def missing_fields(rows: Rows, reads: Reads) -> list[tuple[str, tuple[str, ...], int]]:
    """``(step, fields, n)`` for each step of ``reads`` with fields that no dict value of
    ``rows`` has; ``n``: the records read without them (the batch's dict values).

    >>> rows = [("a", {"n": 1}, 0, (), 0), ("b", {"m": 2}, 0, (), 1)]
    >>> missing_fields(rows, (("f", ("n",)), ("g", ("x", "n")), ("h", ("x",))))
    [('g', ('x',), 2), ('h', ('x',), 2)]
    """
    first = rows[0][1] if rows else None
    if not isinstance(first, dict):
        return []  # (not records with fields, or a deletion first: not checked)
    out = []
    for step, fields in reads:
        absent = tuple(f for f in fields if f not in first and not any(_has(r[1], f) for r in rows))
        if absent:
            out.append((step, absent, sum(isinstance(r[1], dict) for r in rows)))
    return out


def _has(v: Any, field: str) -> bool:
    return isinstance(v, dict) and field in v


def report_missing(drops: Drops, step: str, fields: tuple[str, ...], n: int) -> None:
    """Count ``n`` records ``step`` read without ``fields`` (the first time, a warning)."""
    names = ", ".join(f"'{f}'" for f in fields)
    drops.add(step, "missing_field", n, detail=f"{names}: in no record of a batch")


def count_missing(drops: Drops, rows: Rows, reads: Reads) -> None:
    """Count (and warn once per step about) the fields of ``reads`` absent from ``rows``."""
    for step, fields, n in missing_fields(rows, reads):
        report_missing(drops, step, fields, n)


class ChainFn:
    """A compiled chain: ``chain(rows) -> (exit_0_rows, exit_1_rows, ...)``.

    A chain has one exit, or one per predicate when it ends in a ``branch``.
    """

    def __init__(
        self, nodes: Sequence[plan.Node], access: Mapping[str, Access] | None = None
    ) -> None:
        """``access``: per step, how its input values' fields read (dicts when not given)."""
        if not nodes:
            raise ValueError("a chain needs at least one step")
        self.steps = tuple(n.step for n in nodes)
        last = nodes[-1]
        body = list(nodes[:-1]) if isinstance(last, plan.Branch) else list(nodes)
        self.exits = len(last.predicates) if isinstance(last, plan.Branch) else 1
        #: the fields its steps read from its input values (checked per batch)
        self.reads = input_reads(nodes)
        g = CodeGen()
        lines = ["def _chain(rows):"]
        lines += [f"    o{i} = []; a{i} = o{i}.append" for i in range(self.exits)]
        lines.append("    for k, v, t, h, o in rows:")
        ind = 2
        self._line_steps: list[tuple[int, str]] = []  # (first line number, step)
        for n in body:
            self._line_steps.append((len(lines) + 1, n.step))
            g.access = access.get(n.step, "dict") if access is not None else "dict"
            code, nests = _node_lines(n, g)
            lines += ["    " * ind + c for c in code]
            ind += nests
        self._line_steps.append((len(lines) + 1, last.step))
        row = "(k, v, t, h, o)"
        g.access = access.get(last.step, "dict") if access is not None else "dict"
        if isinstance(last, plan.Branch):
            for i, p in enumerate(last.predicates):
                kw = "if" if i == 0 else "elif"
                lines.append("    " * ind + f"{kw} {_call(p, g)}: a{i}({row})")
        else:
            lines.append("    " * ind + f"a0({row})")
        lines.append(f"    return ({', '.join(f'o{i}' for i in range(self.exits))},)")
        self.source = "\n".join(lines) + "\n"
        self._filename = f"<chain {next(_ids)}: {' > '.join(self.steps)}>"
        ns: dict[str, Any] = dict(g.namespace)
        exec(compile(self.source, self._filename, "exec"), ns)
        self._fn: Callable[[Rows], tuple[Rows, ...]] = ns["_chain"]

    def __call__(self, rows: Rows) -> tuple[Rows, ...]:
        try:
            return self._fn(rows)
        except Exception as e:
            raise self._locate(e) from e

    def _locate(self, exc: Exception) -> ProcessingError:
        tb: types.TracebackType | None = exc.__traceback__
        frame, line = None, 0
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == self._filename:
                frame, line = tb.tb_frame, tb.tb_lineno
            tb = tb.tb_next
        step = self.steps[0]
        for first, s in self._line_steps:
            if line >= first:
                step = s
        offset = frame.f_locals.get("o") if frame is not None else None
        return ProcessingError(
            f"{type(exc).__name__}: {exc}",
            step=step,
            offset=offset if isinstance(offset, int) else None,
        )


class ChainProcessor:
    """Runs a :class:`ChainFn` and hands each non-empty exit batch to that exit's children.

    ``policy(step)`` gives the :class:`~operators.errors.ErrorPolicy` of the chain's step that
    failed (default: every step fails). When a user function fails and that step's policy is
    not ``fail``, the batch is re-run record by record (the chain is stateless; a ``peek``
    before the failing step sees those records twice) and each failing record goes to its
    step's policy: ``skip`` counts and logs it, ``dead_letter`` sends it on, ``fail`` raises.
    """

    __slots__ = ("chain", "drops", "exits", "policy")

    def __init__(
        self,
        chain: ChainFn,
        exits: list[list[Processor]],
        *,
        policy: Callable[[str | None], ErrorPolicy] | None = None,
        drops: Drops | None = None,
    ) -> None:
        self.chain = chain
        self.exits = exits
        self.policy = policy
        #: where fields absent from a whole batch are counted (None: not checked)
        self.drops = drops if chain.reads else None

    def _one_by_one(self, rows: Rows) -> tuple[Rows, ...]:
        assert self.policy is not None
        outs: tuple[Rows, ...] = tuple([] for _ in self.exits)
        for row in rows:
            try:
                got = self.chain([row])
            except ProcessingError as e:
                self.policy(e.step).handle(row, e)
                continue
            for acc, part in zip(outs, got, strict=True):
                acc.extend(part)
        return outs

    def process(self, rows: Rows) -> None:
        if self.drops is not None and rows:
            count_missing(self.drops, rows, self.chain.reads)
        self.run(rows)

    def run(self, rows: Rows) -> None:
        """:meth:`process` without the missing-field check (a columnar chain did it)."""
        try:
            outs = self.chain(rows)
        except ProcessingError as e:
            if self.policy is None or self.policy(e.step).fails:
                raise
            outs = self._one_by_one(rows)
        for out, children in zip(outs, self.exits, strict=True):
            if out:
                for c in children:
                    c.process(out)


__all__ = [
    "ChainFn",
    "ChainProcessor",
    "Lines",
    "Reads",
    "count_missing",
    "filter_lines",
    "flat_map_lines",
    "flat_map_values_lines",
    "input_reads",
    "key_by_lines",
    "map_lines",
    "map_values_lines",
    "missing_fields",
    "no_lines",
    "peek_lines",
    "report_missing",
    "select_lines",
    "table_filter_lines",
    "table_map_values_lines",
    "with_columns_lines",
]
