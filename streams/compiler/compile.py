"""The compiler: logical plan -> physical plan.

1. **Validate** the DAG (at least one source; every step reachable from one).
2. **Split** it into sub-topologies at repartition topics: everything connected without crossing
   a repartition topic runs in one task per partition.
3. **Fuse** runs of stateless steps (one parent, the parent has one child) into one generated
   loop per run (:mod:`operators.fused`).
4. **Name** internal topics (``{app_id}-{step}-repartition``) and note how their partition
   counts are derived (the max over the upstream sub-topology's inputs, as Kafka Streams does).

>>> import streams as st
>>> t = st.Topology("app")
>>> t.source("in").filter(st.col("x") > 1).map_values(st.col("x")).to("out")
>>> p = t.compile()
>>> [s.steps for s in p.subtopologies[0].segments.values()]
[('filter-1', 'map-values-2'), ('sink-3',)]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from operators.columnar import ColumnarChain
from operators.fused import ChainFn
from operators.registry import SegmentKind, needs_watermark, spec_for
from state.task_state import StoreDef
from streams.compiler.arrow_plan import arrow_repartition, joins_run, pruned_schema, runs_columnar
from streams.core.errors import TopologyError
from streams.core.policies import ErrorPolicyName, Execution
from streams.core.serde import BYTES, PICKLE, Serde
from streams.core.types import RecordType
from streams.plan import nodes as plan
from streams.plan.logical import LogicalPlan


class Compilable(Protocol):
    """What the runtime runs: anything with an ``app_id`` that compiles to a physical plan
    (a :class:`~streams.dsl.topology.Topology`)."""

    @property
    def app_id(self) -> str: ...

    def compile(self, *, fuse: bool = True) -> PhysicalPlan: ...


@dataclass(frozen=True)
class Input:
    """A topic a sub-topology reads: a user source or a repartition topic."""

    topic: str
    step: str
    key_serde: Serde
    value_serde: Serde
    timestamp: plan.Fn | None
    internal: bool
    children: tuple[str, ...]  # segment ids fed by this input
    #: a repartition topic that columnar writers fill with Arrow IPC batches (and rows)
    arrow: bool = False
    #: a user source's schema (JSON, Avro decode into Arrow), narrowed to the fields steps read
    schema: Any = None
    #: the user source's node (None for a repartition topic)
    source: plan.Source | None = None
    #: the record class of its values (a typed source, a repartition of typed records)
    record: RecordType | None = None


@dataclass(frozen=True)
class Segment:
    """One processor of the physical graph: a fused chain or a single non-fusable step."""

    id: str
    kind: SegmentKind
    steps: tuple[str, ...]
    exits: tuple[tuple[str, ...], ...]  # per exit: downstream segment ids
    chain: ChainFn | None = None
    #: chains: whether they run on Arrow; repartitions: whether they send Arrow batches
    mode: Literal["row", "columnar"] = "row"
    #: the chain's Arrow form (mode "columnar"); batches Arrow declines run ``chain``
    columnar: ColumnarChain | None = None
    #: the logical nodes of ``steps``
    nodes: tuple[plan.Node, ...] = ()
    #: the error policy of each step (``stream.on_error`` or the plan's)
    policies: Mapping[str, ErrorPolicyName] = field(default_factory=dict)
    #: the plan's execution mode (how chains and aggregations run their batches)
    execution: Execution = "auto"
    #: a columnar chain that converts row batches at its entry (not only Arrow ones)
    convert_rows: bool = False


@dataclass(frozen=True)
class StoreInfo:
    """A store of a sub-topology and its changelog topic."""

    spec: plan.StoreSpec
    changelog: str
    step: str
    #: what a task opens (built here once: tasks and standby replicas use the same)
    definition: StoreDef
    #: the node owning the store (how its entries read, e.g. an aggregate's presenter)
    node: plan.Node


@dataclass(frozen=True)
class SubTopology:
    id: int
    inputs: Mapping[str, Input]
    segments: Mapping[str, Segment]  # in topological order
    outputs: tuple[str, ...]  # topics written (sinks and repartition topics)
    stores: tuple[StoreInfo, ...] = ()
    #: (stateful step, the input topics it reads): these must have equal partition counts
    copartitioned: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class InternalTopic:
    """A topic the application owns. ``partitions=None``: derived from ``partitions_from``."""

    name: str
    kind: Literal["repartition", "changelog", "dlq"]
    partitions: int | None
    partitions_from: tuple[str, ...] = ()
    config: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PhysicalPlan:
    app_id: str
    #: the logical plan compiled (plain data: nodes, execution, error policies)
    logical: LogicalPlan
    subtopologies: tuple[SubTopology, ...]
    internal_topics: tuple[InternalTopic, ...]
    source_topics: tuple[str, ...]
    sink_topics: Mapping[str, tuple[Serde, Serde]]
    #: repartition topics whose readers need event time (windows downstream): their writers
    #: send watermark control records
    timed_topics: frozenset[str] = frozenset()
    #: global tables: every worker reads all partitions of their topics into one store
    global_tables: tuple[plan.GlobalTableSource, ...] = ()
    #: the default error policy (steps without their own, errors naming no step)
    on_error: ErrorPolicyName = "fail"
    execution: Execution = "auto"

    def subtopology_of(self, topic: str) -> SubTopology:
        for s in self.subtopologies:
            if topic in s.inputs:
                return s
        raise KeyError(topic)

    @property
    def input_topics(self) -> tuple[str, ...]:
        return tuple(t for s in self.subtopologies for t in s.inputs)

    @property
    def dead_letter_topics(self) -> tuple[str, ...]:
        """The topics dead letters go to (``{app_id}-dlq``, sources' ``dead_letter_topic``)."""
        return tuple(t.name for t in self.internal_topics if t.kind == "dlq")

    def output_serdes(self, topic: str) -> tuple[Serde, Serde] | None:
        """How to read ``topic`` if the application writes it: a sink's serdes, or bytes for
        a dead-letter topic (its records keep their original bytes). None: not written."""
        serdes = self.sink_topics.get(topic)
        if serdes is None and topic in self.dead_letter_topics:
            return BYTES, BYTES
        return serdes


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)


def compile_plan(topo: LogicalPlan, *, fuse: bool = True) -> PhysicalPlan:
    """Compile ``topo``; ``fuse=False`` gives every step its own processor (for testing fusion)."""
    nodes = topo.nodes
    if not any(isinstance(n, plan.Source) for n in nodes):
        raise TopologyError(f"topology '{topo.app_id}' has no source: call topology.source()")
    by_step = {n.step: n for n in nodes}

    # -- 2. sub-topologies: connected components not crossing a repartition topic ----------
    uf = _UnionFind()
    for n in nodes:
        uf.find(n.step)
        for p in n.parents:
            if not isinstance(by_step[p], plan.Repartition):
                uf.union(n.step, p)
    groups: dict[str, list[plan.Node]] = {}
    for n in nodes:
        if not isinstance(n, plan.GlobalTableSource):  # global tables live outside tasks
            groups.setdefault(uf.find(n.step), []).append(n)

    subs: list[SubTopology] = []
    internal: list[InternalTopic] = []
    sinks: dict[str, tuple[Serde, Serde]] = {}
    for members in groups.values():
        sub, topics = _build_subtopology(topo, len(subs), members, by_step, fuse)
        subs.append(sub)
        internal.extend(topics)
    for n in nodes:
        if isinstance(n, plan.Sink):
            assert n.key_serde is not None and n.value_serde is not None
            prev = sinks.get(n.topic)
            if prev is not None and prev != (n.key_serde, n.value_serde):
                raise TopologyError(
                    f"step '{n.step}': topic '{n.topic}' is written with other serdes elsewhere"
                )
            sinks[n.topic] = (n.key_serde, n.value_serde)
    sources = tuple(n.topic for n in nodes if isinstance(n, plan.Source))
    globals_ = tuple(n for n in nodes if isinstance(n, plan.GlobalTableSource))
    dlqs = {
        n.dead_letter_topic for n in nodes if isinstance(n, plan.Source) and n.dead_letter_topic
    }
    if topo.dead_letters:
        dlqs.add(f"{topo.app_id}-dlq")
    dlq_config = {"cleanup.policy": "delete"}
    if topo.dead_letter_retention_ms is not None:
        dlq_config["retention.ms"] = str(topo.dead_letter_retention_ms)
    for dlq in sorted(dlqs):
        internal.append(InternalTopic(dlq, "dlq", topo.dead_letter_partitions, (), dlq_config))
    timed = frozenset(
        n.topic for n in nodes if isinstance(n, plan.Repartition) and _feeds_windows(topo, n.step)
    )
    return PhysicalPlan(
        topo.app_id,
        topo,
        tuple(subs),
        tuple(internal),
        sources,
        sinks,
        timed,
        globals_,
        topo.on_error,
        topo.execution,
    )


def _feeds_windows(topo: LogicalPlan, step: str) -> bool:
    todo, seen = [step], set()
    while todo:
        s = todo.pop()
        if s in seen:
            continue
        seen.add(s)
        if needs_watermark(topo.node(s)):
            return True
        todo.extend(topo.children(s))
    return False


def _build_subtopology(
    topo: LogicalPlan,
    sid: int,
    members: list[plan.Node],
    by_step: Mapping[str, plan.Node],
    fuse: bool,
) -> tuple[SubTopology, list[InternalTopic]]:
    member_steps = {n.step for n in members}
    segment_of: dict[str, str] = {}
    seg_steps: dict[str, list[plan.Node]] = {}
    kinds: dict[str, SegmentKind] = {}

    def children(step: str) -> list[str]:
        """Data children (a join's edge from its table is a lookup, not a flow of records)."""
        out = []
        for c in topo.children(step):
            cn = by_step[c]
            lookup = getattr(cn, "table_step", None) == step  # a lookup edge, not a data flow
            if c in member_steps and not lookup:
                out.append(c)
        return out

    for n in members:
        if isinstance(n, plan.Source):
            continue
        kind = spec_for(n).segment
        if kind == "chain":
            p = by_step[n.parents[0]] if len(n.parents) == 1 else None
            if (
                fuse
                and p is not None
                and p.step in member_steps
                and spec_for(p).segment == "chain"
                and not isinstance(p, plan.Branch)
                and len(topo.children(p.step)) == 1
                and joins_run(topo, seg_steps[segment_of[p.step]], n)
            ):
                seg = segment_of[p.step]
                seg_steps[seg].append(n)
                segment_of[n.step] = seg
                continue
        if kind not in ("chain", "sink", "repartition", "stateful"):  # pragma: no cover
            raise TopologyError(f"step '{n.step}': {n.kind} is not a step of a task")
        kinds[n.step] = kind
        segment_of[n.step] = n.step
        seg_steps[n.step] = [n]

    segments: dict[str, Segment] = {}
    for seg_id, steps in seg_steps.items():
        last = steps[-1]
        exits: tuple[tuple[str, ...], ...]
        if isinstance(last, plan.Branch):
            outs = {by_step[c].index: c for c in topo.children(last.step)}  # type: ignore[attr-defined]
            exits = tuple((segment_of[outs[i]],) for i in range(len(last.predicates)))
        elif spec_for(last).late_exit:  # exit 0: results, exit 1: late records
            below = children(last.step)
            exits = (
                tuple(segment_of[c] for c in below if not isinstance(by_step[c], plan.LateOutput)),
                tuple(segment_of[c] for c in below if isinstance(by_step[c], plan.LateOutput)),
            )
        elif isinstance(last, plan.Repartition):
            exits = ((),)  # its readers live in another sub-topology
        else:
            exits = (tuple(segment_of[c] for c in children(last.step)),)
        chain = None
        if kinds[seg_id] == "chain":
            chain = ChainFn(steps, access={n.step: topo.schemas.access_in(n.step) for n in steps})
        columnar, convert = None, False
        if chain is not None:
            on_arrow, convert = runs_columnar(topo, steps, segments, segment_of)
            columnar = ColumnarChain(steps) if on_arrow else None
        arrow = isinstance(last, plan.Repartition) and arrow_repartition(
            topo, last, segments.get(segment_of.get(last.parents[0], ""))
        )
        segments[seg_id] = Segment(
            seg_id,
            kinds[seg_id],
            tuple(s.step for s in steps),
            exits,
            chain,
            "columnar" if columnar is not None or arrow else "row",
            columnar,
            tuple(steps),
            {s.step: topo.policy_for(s.step) for s in steps},
            topo.execution,
            convert,
        )

    inputs: dict[str, Input] = {}
    for n in members:
        if isinstance(n, plan.Source):
            assert n.key_serde is not None and n.value_serde is not None
            kids = tuple(segment_of[c] for c in children(n.step))
            inputs[n.topic] = Input(
                n.topic,
                n.step,
                n.key_serde,
                n.value_serde,
                n.timestamp,
                False,
                kids,
                schema=pruned_schema(topo, n, [segments[k] for k in kids], by_step),
                source=n,
                record=topo.schemas.record_out(n.step),
            )
    # repartition topics read by this sub-topology: parents outside it that are Repartitions
    for n in members:
        for parent in n.parents:
            rp = by_step[parent]
            if isinstance(rp, plan.Repartition) and rp.step not in member_steps:
                prev = inputs.get(rp.topic)
                kids = (prev.children if prev else ()) + (segment_of[n.step],)
                inputs[rp.topic] = Input(
                    rp.topic,
                    rp.step,
                    rp.key_serde or PICKLE,
                    rp.value_serde or PICKLE,
                    None,
                    True,
                    kids,
                    arrow=arrow_repartition(topo, rp, None),
                    record=topo.schemas.record_out(rp.step),
                )

    outputs: list[str] = []
    topics: list[InternalTopic] = []
    stores: list[StoreInfo] = []
    for n in members:
        for spec in n.stores:
            if spec.source_topic is not None:  # the table's own topic is its changelog
                stores.append(StoreInfo(spec, spec.source_topic, n.step, _store_def(spec), n))
                continue
            changelog = topo.internal_topic(spec.name, "changelog")
            stores.append(StoreInfo(spec, changelog, n.step, _store_def(spec, changelog), n))
            topics.append(
                InternalTopic(changelog, "changelog", None, tuple(inputs), _changelog_config(spec))
            )
    for n in members:
        if isinstance(n, plan.Sink):
            outputs.append(n.topic)
        elif isinstance(n, plan.Repartition):
            outputs.append(n.topic)
            topics.append(
                InternalTopic(
                    n.topic,
                    "repartition",
                    n.partitions,
                    (n.partitions_like,) if n.partitions_like else tuple(inputs),
                    # time retention would delete records by their (event) timestamps, e.g.
                    # during a backfill, before they are read: keep them (as Kafka Streams)
                    {"cleanup.policy": "delete", "retention.ms": "-1"},
                )
            )
    copart = []
    for n in members:
        if n.stores or spec_for(n).lookup:
            reads = _input_topics(n.step, by_step, member_steps)
            if len(reads) > 1:
                copart.append((n.step, reads))
    sub = SubTopology(
        sid, inputs, segments, tuple(dict.fromkeys(outputs)), tuple(stores), tuple(copart)
    )
    return sub, topics


def _store_def(spec: plan.StoreSpec, changelog: str | None = None) -> StoreDef:
    """A task's view of ``spec``: a table read from its own topic is not logged (that topic
    is its changelog, nothing is produced to it)."""
    return StoreDef(
        spec.name,
        spec.kind,
        changelog or spec.source_topic or "",
        spec.key_serde,
        spec.value_serde,
        logged=spec.source_topic is None,
    )


def _input_topics(
    step: str, by_step: Mapping[str, plan.Node], members: set[str]
) -> tuple[str, ...]:
    """The topics (sources, repartition topics) whose records reach ``step`` in its sub-topology."""
    out: list[str] = []
    todo, seen = [step], set()
    while todo:
        s = todo.pop()
        if s in seen:
            continue
        seen.add(s)
        n = by_step[s]
        if isinstance(n, plan.Source):
            out.append(n.topic)
        for parent in n.parents:
            pn = by_step[parent]
            if isinstance(pn, plan.Repartition) and parent not in members:
                out.append(pn.topic)
            else:
                todo.append(parent)
    return tuple(sorted(set(out)))


def _changelog_config(spec: plan.StoreSpec) -> dict[str, str]:
    """Compacted; window and session stores also expire by time (retention + a day of margin)."""
    if spec.kind == "kv" or spec.retention_ms is None:
        return {"cleanup.policy": "compact"}
    return {
        "cleanup.policy": "compact,delete",
        "retention.ms": str(spec.retention_ms + 24 * 3600 * 1000),
    }


__all__ = [
    "Compilable",
    "Input",
    "InternalTopic",
    "PhysicalPlan",
    "Segment",
    "StoreInfo",
    "SubTopology",
    "compile_plan",
]
