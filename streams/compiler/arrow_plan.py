"""Where the plan runs on Arrow: which chains are columnar, what a source decodes into Arrow.

A fusable run splits where its steps change side — expression steps (which have an Arrow form)
on one side, Python callables on the other — where the expression side can run on Arrow, so
that a chain with one callable in the middle runs its expression steps on Arrow and only the
callable row-wise (below, the callable is not annotated: what follows it stays row-wise). A chain runs columnar under ``execution="columnar"``; under ``"auto"`` when its input
arrives columnar (a source with a declared schema or a typed value whose fields all have an
Arrow type, a columnar chain before it) or when its input is records of a class whose fields
all have an Arrow type (the output of a callable annotated ``-> Alert``): then rows are
converted at the chain's entry.

>>> import msgspec, streams as st
>>> class Tx(msgspec.Struct):
...     card: str
...     amount: int
>>> t = st.Topology("app")
>>> s = t.source("tx", value=Tx).filter(st.col("amount") > 5)
>>> s.map_values(lambda v: v).filter(st.col("amount") > 7).to("out")
>>> [(g.steps, g.mode) for g in t.compile().subtopologies[0].segments.values()]
[(('filter-1',), 'columnar'), (('map-values-2', 'filter-3'), 'row'), (('sink-4',), 'row')]
"""  # noqa: E501

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from operators.columnar import chain_is_columnar
from streams.core.typed_serde import TypedJson, record_of
from streams.core.types import RecordType
from streams.plan import nodes as plan
from streams.plan.expr import Expr
from streams.plan.logical import LogicalPlan

if TYPE_CHECKING:
    from streams.compiler.compile import Segment

Side = Literal["expr", "py", "neutral"]


def side(n: plan.Node) -> Side:
    """Whether a fusable step runs on Arrow (``expr``), only row-wise (``py``) or passes
    records on as they are (``neutral``: merges, branch and late outputs)."""
    if isinstance(n, plan.Merge | plan.LateOutput | plan.BranchOutput):
        return "neutral"
    return "expr" if chain_is_columnar([n]) else "py"


def run_side(steps: Sequence[plan.Node]) -> Side:
    for n in steps:
        s = side(n)
        if s != "neutral":
            return s
    return "neutral"


def joins_run(topo: LogicalPlan, run: Sequence[plan.Node], n: plan.Node) -> bool:
    """Whether ``n`` may be fused onto ``run``: always row-wise and on the same side; at a
    change of side under ``"columnar"``, never; under ``"auto"``, only where the Arrow side
    could not run on Arrow anyway (its records arrive as rows of unknown shape)."""
    if topo.execution == "row":
        return True
    a, b = run_side(run), side(n)
    if a == "neutral" or b == "neutral" or a == b:
        return True
    if topo.execution == "columnar":
        return False
    if a == "expr":  # expressions then a callable: split when the expressions get Arrow
        return not fed_arrow(topo, run[0])
    return not _arrowable(topo.schemas.record_in(n.step))  # a callable then expressions


def _arrowable(rec: RecordType | None) -> bool:
    return rec is not None and rec.arrow_schema() is not None


def fed_arrow(topo: LogicalPlan, first: plan.Node) -> bool:
    """Whether the records of a chain starting at ``first`` can arrive on Arrow: from a
    source that decodes into Arrow, or as records of a class Arrow holds."""
    for p in first.parents:
        pn = topo.node(p)
        if isinstance(pn, plan.Source) and source_schema(topo, pn) is not None:
            return True
    return _arrowable(topo.schemas.record_in(first.step))


def typed_schema(topo: LogicalPlan, src: plan.Source) -> Any:
    """The Arrow schema a typed JSON source decodes into, when the plan is not row-wise, every
    field of its class has an Arrow type and a child of the source runs on Arrow; else None."""
    rec = record_of(src.value_serde)
    typed_avro = hasattr(src.value_serde, "dicts")  # (streams.core.serdes.typed_avro)
    if rec is None or topo.execution == "row":
        return None
    if not isinstance(src.value_serde, TypedJson) and not typed_avro:
        return None
    if topo.execution == "auto" and not any(
        side(topo.node(c)) == "expr" for c in topo.children(src.step)
    ):
        return None
    return rec.arrow_schema()


def source_schema(topo: LogicalPlan, src: plan.Source) -> Any:
    """What a source decodes into Arrow with: its declared schema, or its typed one."""
    return src.schema if src.schema is not None else typed_schema(topo, src)


def runs_columnar(
    topo: LogicalPlan,
    steps: list[plan.Node],
    built: Mapping[str, Segment],
    segment_of: Mapping[str, str],
) -> tuple[bool, bool]:
    """(whether a chain runs on Arrow, whether it converts row batches at its entry)."""
    if topo.execution == "row" or not chain_is_columnar(steps):
        return False, False
    if topo.execution == "columnar":
        return True, True
    schemas = topo.schemas
    for p in steps[0].parents:
        pn = topo.node(p)
        if isinstance(pn, plan.Source) and source_schema(topo, pn) is not None:
            return True, False
        seg = built.get(segment_of.get(p, ""))
        if seg is not None and seg.mode == "columnar":
            return True, False
        if isinstance(pn, plan.WindowedAggregate) and closes_to_arrow(pn, topo.execution):
            return True, False
    rec = schemas.record_in(steps[0].step)
    if rec is not None and rec.arrow_schema() is not None:
        return True, True
    return False, False


def closes_to_arrow(node: plan.WindowedAggregate, execution: str) -> bool:
    """Whether a windowed aggregation hands its closed windows on as Arrow batches (final
    results of a whole-batch Arrow form; :meth:`WindowedAggregateProcessor._columnar_out`), so
    that an expression chain after it runs on Arrow under ``"auto"``."""
    from operators.windowed_base import columnar_plan

    return node.emit == "final" and columnar_plan(node, execution)[0] is not None


def pruned_schema(
    topo: LogicalPlan, src: plan.Source, kids: list[Segment], by_step: Mapping[str, plan.Node]
) -> Any:
    """A declared schema without the fields no step can see: when every child of the source
    is a columnar chain that projects (``select``/``map_values``) and the event time is an
    expression, only the fields they read are decoded (JSON parsing is most of the cost of a
    stateless query; a field not decoded costs nothing). A typed source's records become
    objects of their class again where rows are needed: the projection comes first, and a
    chain Arrow declines gets dicts (see :meth:`operators.columnar.ColumnarBatch.to_rows`)."""
    schema = source_schema(topo, src)
    if schema is None or isinstance(schema, str) or not kids:
        return schema
    need: set[str] = set()
    if src.timestamp is not None:
        if not isinstance(src.timestamp.obj, Expr):
            return schema  # fn(value) may read any field
        need |= src.timestamp.obj.columns()
    if any(seg.columnar is None for seg in kids):
        return schema
    reads = value_reads(topo, src.step)
    if reads is None:
        return schema
    need |= reads
    fields = [f for f in schema if f.name in need]
    if not fields or len(fields) == len(schema):
        return schema
    import pyarrow as pa  # type: ignore[import-untyped]

    return pa.schema(fields)


_AGG_KINDS = ("count", "sum", "min", "max", "mean", "argmax")


def _agg_reads(node: plan.Aggregate | plan.WindowedAggregate) -> frozenset[str] | None:
    """The fields an aggregation's records are read for (None: a callable may read any)."""
    out: frozenset[str] = frozenset()
    for _, a in node.aggs:
        if a.kind not in _AGG_KINDS or (a.kind == "argmax" and not a.keep):
            return None
        if a.of is not None:
            if not isinstance(a.of, Expr):
                return None
            out |= a.of.columns()
        elif a.kind != "count":
            return None
        out |= frozenset(a.keep or ()) | a.reads
    return out


def value_reads(topo: LogicalPlan, step: str) -> frozenset[str] | None:
    """The fields of the values leaving ``step`` that any step downstream can see (None: any,
    as where a callable or a topic gets whole values). It follows expression steps, merges and
    side outputs, and internal repartition topics (whose values only their readers see) into
    the aggregations that make new values of a few fields.

    >>> import streams as st
    >>> from streams import agg, windows
    >>> t = st.Topology("r")
    >>> s = t.source("in").filter(st.col("type") == "bid").key_by("auction")
    >>> _ = s.window("w", windows.tumbling(ms=10)).aggregate(top=agg.max("price")).to("out")
    >>> sorted(value_reads(t.logical_plan(), "source-in"))
    ['auction', 'price', 'type']
    """
    out: frozenset[str] = frozenset()
    for c in topo.children(step):
        n = topo.node(c)
        if isinstance(n, plan.Aggregate | plan.WindowedAggregate):
            reads = _agg_reads(n)
        elif isinstance(n, plan.Repartition):
            free = n.key_serde is None and n.value_serde is None
            reads = value_reads(topo, c) if free else None
        elif isinstance(n, plan.Merge | plan.LateOutput | plan.BranchOutput):
            reads = value_reads(topo, c)
        elif isinstance(n, plan.Filter | plan.KeyBy | plan.Branch | plan.Select | plan.MapValues):
            reads = _expr_reads(n)
            if reads is not None and not isinstance(n, plan.Select | plan.MapValues):
                below = value_reads(topo, c)  # (select, map_values: new values)
                reads = None if below is None else reads | below
        elif isinstance(n, plan.WithColumns):
            reads, below = _expr_reads(n), value_reads(topo, c)
            if reads is not None and below is not None:
                reads |= below - {name for name, _ in n.columns}
            else:
                reads = None
        else:
            reads = None
        if reads is None:
            return None
        out |= reads
    return out


def _expr_reads(n: plan.Node) -> frozenset[str] | None:
    """The fields a step's expressions read (None: a step with a callable)."""
    fns = [fn for f in ("predicate", "fn", "key") if isinstance(fn := getattr(n, f, None), plan.Fn)]
    fns += [fn for _, fn in getattr(n, "columns", ())]
    fns += list(getattr(n, "predicates", ()))
    out: frozenset[str] = frozenset()
    for fn in fns:
        if not isinstance(fn.obj, Expr):
            return None
        out |= fn.obj.columns()
    return out


def arrow_repartition(topo: LogicalPlan, rp: plan.Repartition, writer: Segment | None) -> bool:
    """Whether a repartition topic carries Arrow batches (:mod:`operators.arrow_ipc`): with
    the internal default serdes (pickle), its writer sends them when a columnar chain feeds
    it; its readers (``writer`` None) always take them, whatever the execution, so a restart
    with another ``execution`` still reads what the last run left in the topic."""
    if rp.key_serde is not None or rp.value_serde is not None:
        return False
    return writer is None or (topo.execution != "row" and writer.mode == "columnar")


__all__ = [
    "arrow_repartition",
    "closes_to_arrow",
    "fed_arrow",
    "joins_run",
    "pruned_schema",
    "run_side",
    "runs_columnar",
    "side",
    "source_schema",
    "typed_schema",
    "value_reads",
]
