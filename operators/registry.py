"""The operator registry: per logical node class, everything that depends on its kind.

One :class:`OperatorSpec` per node class of :mod:`streams.plan.nodes`, in one table
(:data:`REGISTRY`) rather than next to each operator: the operator modules stay free of
registration side effects, and this module is the one place that lists every kind. An entry
says

- ``segment``: where the compiler puts the step (``chain``: fused with its neighbours;
  ``stateful``, ``sink``, ``repartition``: a processor of its own; ``source``/``global``: read
  by the task's decoders or the global-table loader, no processor);
- ``build(node, exits, ctx)``: the processor a task makes for it (``exits``: the processors
  each exit feeds; ``ctx``: the task, as a :class:`BuildContext`);
- ``fused``/``columnar``: the generated row code (:mod:`operators.fused`) and the Arrow step
  (:mod:`operators.columnar`) of a fusable step (None: it has no such form);
- ``describe(node, execution)``: how the operator will run its batches, as ``describe()``
  prints it (asked from the operator's own batch planners, never re-derived);
- ``on_error``: whether the step runs user functions under an error policy;
- ``binary``: a two-input processor whose first parent feeds ``.left``, the other ``.right``.

Adding a node kind: the node, its operator and its entry here.

>>> from streams.plan import nodes as plan
>>> spec_for(plan.Filter(step="f", parents=("s",), predicate=plan.as_fn("f", "p", "ok"))).segment
'chain'
>>> all(cls in REGISTRY for cls in node_classes())
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from operators import aggregate, fused, windowed
from operators import columnar as col
from operators.aggregate import AggregateProcessor
from operators.async_call import AsyncCallProcessor
from operators.base import Collector, Processor
from operators.connectors.api import Guarantee, SinkContext
from operators.connectors.runtime import SinkProcessor as ConnectorSinkProcessor
from operators.drops import Drops
from operators.errors import ErrorPolicy
from operators.event_time import EventTime
from operators.fk_join import FkResolveProcessor, FkRespondProcessor, FkSubscribeProcessor
from operators.join import StreamStreamJoinProcessor, TableTableJoinProcessor
from operators.map_batches import MapBatchesProcessor
from operators.process import ProcessProcessor
from operators.sink import SinkProcessor
from operators.table import LookupJoinProcessor, TableMaterializer
from operators.windowed import WindowedAggregateProcessor
from operators.windowed_processing import ProcessingTimeWindowsProcessor
from state.session import SessionStore
from state.task_state import TaskStores
from state.window import WindowStore
from streams.core.errors import StreamsError
from streams.core.policies import Execution
from streams.core.serde import PICKLE
from streams.plan import nodes as plan
from streams.plan.windows import Hopping, Tumbling

#: the processors of a task's physical graph
SegmentKind = Literal["chain", "sink", "repartition", "stateful"]
Role = Literal["chain", "sink", "repartition", "stateful", "source", "global"]


class BuildContext(Protocol):
    """What a processor may take from the task building it."""

    partition: int
    execution: Execution
    app_id: str
    #: the task's processing guarantee (connector sinks are told)
    guarantee: Guarantee
    collector: Collector
    #: the number of tasks of the sub-topology (sinks count keys' partitions with it)
    task_count: int
    #: where a step counts the records it drops (null key, late, skipped, missing field)
    drops: Drops
    #: the watermark before each record of the batch being run (windows and joins judge
    #: lateness with it)
    event_time: EventTime

    @property
    def stores(self) -> TaskStores: ...

    def clock(self) -> int: ...

    def policy(self, step: str | None) -> ErrorPolicy:
        """The error policy of ``step`` (with the task's dead-letter queue)."""
        ...

    def getter(self, table_step: str) -> Callable[[Any], Any]:
        """``key -> value`` of the table ``table_step`` (in this task's stores)."""
        ...

    def global_store(self, step: str) -> Any:
        """The loaded store of global table ``step`` (None: not loaded)."""
        ...

    def arrow_out(self, step: str) -> bool:
        """Whether repartition ``step`` sends Arrow IPC batches."""
        ...

    def timed_topic(self, topic: str) -> bool:
        """Whether readers of repartition topic ``topic`` need watermarks."""
        ...

    def on_watermark(self, proc: Any) -> None:
        """Register ``proc`` to hear the task's watermark (``proc.on_watermark(wm)``)."""
        ...

    def connector_sink(self, proc: ConnectorSinkProcessor) -> None:
        """Register a connector sink (it commits in two phases with the task)."""
        ...


Build = Callable[[Any, list[list[Processor]], BuildContext], Any]


@dataclass(frozen=True)
class OperatorSpec:
    """How one node class is compiled, built, fused, run columnar and described."""

    segment: Role
    build: Build | None = None
    fused: Callable[[Any, Any], fused.Lines] | None = None
    columnar: Callable[[Any], col.Step] | None = None
    describe: Callable[[Any, Execution], str] | None = None
    on_error: bool = False
    binary: bool = False
    #: whether the step needs event time (its input repartition topics carry watermarks)
    needs_watermark: Callable[[Any], bool] | None = None
    #: whether exit 1 carries the records too late for it (``LateOutput`` children)
    late_exit: bool = False
    #: whether it looks up a table in its task (what feeds it must be co-partitioned)
    lookup: bool = False


# -- building -----------------------------------------------------------------------------
def _sink(node: plan.Sink | plan.Repartition, exits: Any, ctx: BuildContext) -> SinkProcessor:
    internal = isinstance(node, plan.Repartition)
    sink = SinkProcessor(
        node.step,
        node.topic,
        node.key_serde or PICKLE,
        node.value_serde or PICKLE,
        ctx.collector,
        ctx.partition,
        by_canonical_key=internal,
        arrow=internal and ctx.arrow_out(node.step),  # Arrow IPC batches
    )
    sink.task_count = ctx.task_count
    if internal and ctx.timed_topic(node.topic):
        ctx.on_watermark(sink)
        sink.event_time = ctx.event_time  # (tells downstream tasks of each record's)
    return sink


def _stream_join(node: plan.StreamStreamJoin, exits: Any, ctx: BuildContext) -> Any:
    ls, rs = ctx.stores.raw(node.left_store.name), ctx.stores.raw(node.right_store.name)
    assert isinstance(ls, WindowStore) and isinstance(rs, WindowStore)
    sj = StreamStreamJoinProcessor(node, ls, rs, exits[0], ctx.drops)
    sj.event_time = ctx.event_time
    ctx.on_watermark(sj)
    return sj


def _windowed(node: plan.WindowedAggregate, exits: Any, ctx: BuildContext) -> Any:
    store = ctx.stores.raw(node.store.name)
    assert isinstance(store, WindowStore | SessionStore)
    objects = None
    if isinstance(node.window, Tumbling | Hopping):
        objects = ctx.stores.windows(node.store.name)
    wp = WindowedAggregateProcessor(
        node, store, exits[0], exits[1], execution=ctx.execution, objects=objects
    )
    wp.event_time, wp.drops = ctx.event_time, ctx.drops
    if isinstance(wp, ProcessingTimeWindowsProcessor):
        wp.clock = ctx.clock  # (its windows: the task's wall clock)
    ctx.on_watermark(wp)
    return wp


def _connector_sink(node: plan.SinkConnector, exits: Any, ctx: BuildContext) -> Any:
    state = ctx.stores.kv(node.store.name)
    sc = SinkContext(ctx.app_id, node.step, ctx.partition, ctx.guarantee, state, ctx.clock)
    proc = ConnectorSinkProcessor(node.sink.open(sc), state)
    ctx.connector_sink(proc)
    return proc


def _process(node: plan.Process, exits: Any, ctx: BuildContext) -> Any:
    pp = ProcessProcessor(node, ctx.stores, ctx.partition, exits[0], ctx.policy(node.step))
    if node.on_timer is not None:
        ctx.on_watermark(pp)
    return pp


def _global_join(node: plan.StreamGlobalJoin, exits: Any, ctx: BuildContext) -> Any:
    gstore = ctx.global_store(node.global_step)
    if gstore is None:
        raise StreamsError(f"step '{node.step}': global table '{node.global_step}' is not loaded")
    return LookupJoinProcessor(node, gstore.get, exits[0], ctx.policy(node.step))


def _async(node: Any, exits: Any, ctx: BuildContext) -> AsyncCallProcessor:
    return AsyncCallProcessor(node, exits[0], ctx.policy(node.step))


def _chain(
    fused_: Callable[[Any, Any], fused.Lines] | None,
    columnar: Callable[[Any], col.Step] | None = None,
    on_error: bool = True,
) -> OperatorSpec:
    return OperatorSpec("chain", fused=fused_, columnar=columnar, on_error=on_error)


#: every node class and its operator (see the module docstring)
REGISTRY: Mapping[type[plan.Node], OperatorSpec] = {
    plan.Source: OperatorSpec("source"),
    plan.SourceConnector: OperatorSpec("source"),  # (read by the task's source feed)
    plan.GlobalTableSource: OperatorSpec("global"),
    # stateless steps, fused into chains
    plan.Map: _chain(fused.map_lines),
    plan.MapValues: _chain(fused.map_values_lines, col.map_values_step),
    plan.Filter: _chain(fused.filter_lines, col.filter_step),
    plan.FlatMap: _chain(fused.flat_map_lines),
    plan.FlatMapValues: _chain(fused.flat_map_values_lines),
    plan.Peek: _chain(fused.peek_lines),
    plan.KeyBy: _chain(fused.key_by_lines, col.key_by_step),
    plan.WithColumns: _chain(fused.with_columns_lines, col.with_columns_step),
    plan.Select: _chain(fused.select_lines, col.select_step),
    plan.Branch: _chain(None),  # (ends its chain: the chain's exits are its predicates)
    plan.BranchOutput: _chain(fused.no_lines, col.no_step, on_error=False),
    plan.Merge: _chain(fused.no_lines, col.no_step, on_error=False),
    plan.LateOutput: _chain(fused.no_lines, col.no_step, on_error=False),
    plan.TableFilter: _chain(fused.table_filter_lines),
    plan.TableMapValues: _chain(fused.table_map_values_lines),
    # topics written
    plan.Sink: OperatorSpec("sink", _sink),
    plan.Repartition: OperatorSpec("repartition", _sink),
    # stateful steps
    plan.SinkConnector: OperatorSpec("stateful", _connector_sink),
    plan.MapBatches: OperatorSpec(
        "stateful", lambda n, exits, ctx: MapBatchesProcessor(n, exits[0])
    ),
    plan.Aggregate: OperatorSpec(
        "stateful",
        lambda n, exits, ctx: AggregateProcessor(
            n, ctx.stores.kv(n.store.name), exits[0], ctx.policy(n.step), execution=ctx.execution
        ),
        describe=aggregate.execution_label,
        on_error=True,
    ),
    plan.Process: OperatorSpec(
        "stateful",
        _process,
        on_error=True,
        needs_watermark=lambda n: n.on_timer is not None,  # event-time timers
    ),
    plan.WindowedAggregate: OperatorSpec(
        "stateful",
        _windowed,
        describe=windowed.execution_label,
        needs_watermark=lambda n: True,
        late_exit=True,
    ),
    plan.ToTable: OperatorSpec(
        "stateful",
        lambda n, exits, ctx: TableMaterializer(
            ctx.stores.kv(n.store.name), exits[0], step=n.step, drops=ctx.drops
        ),
    ),
    plan.StreamTableJoin: OperatorSpec(
        "stateful",
        lambda n, exits, ctx: LookupJoinProcessor(
            n, ctx.getter(n.table_step), exits[0], ctx.policy(n.step)
        ),
        on_error=True,
        lookup=True,
    ),
    plan.StreamGlobalJoin: OperatorSpec("stateful", _global_join, on_error=True),
    plan.StreamStreamJoin: OperatorSpec("stateful", _stream_join, binary=True),
    plan.TableTableJoin: OperatorSpec(
        "stateful",
        lambda n, exits, ctx: TableTableJoinProcessor(
            n, ctx.getter(n.parents[0]), ctx.getter(n.parents[1]), exits[0], ctx.drops
        ),
        binary=True,
        lookup=True,
    ),
    plan.FkSubscribe: OperatorSpec(
        "stateful",
        lambda n, exits, ctx: FkSubscribeProcessor(
            n, ctx.stores.kv(n.store.name), exits[0], ctx.drops
        ),
    ),
    plan.FkRespond: OperatorSpec(
        "stateful",
        lambda n, exits, ctx: FkRespondProcessor(
            n, ctx.stores.kv(n.store.name), ctx.getter(n.table_getter_step), exits[0]
        ),
        binary=True,
    ),
    # async steps: a processor of their own (its calls run on the task's event loop)
    plan.MapAsync: OperatorSpec("stateful", _async, on_error=True),
    plan.FilterAsync: OperatorSpec("stateful", _async, on_error=True),
    plan.FlatMapAsync: OperatorSpec("stateful", _async, on_error=True),
    plan.FkResolve: OperatorSpec(
        "stateful",
        lambda n, exits, ctx: FkResolveProcessor(n, ctx.getter(n.table_step), exits[0]),
        lookup=True,
    ),
}


def needs_watermark(node: plan.Node) -> bool:
    """Whether ``node`` reacts to event time (windows, event-time timers)."""
    test = spec_for(node).needs_watermark
    return test is not None and test(node)


def spec_for(node: plan.Node) -> OperatorSpec:
    """The registry entry of ``node``'s class."""
    try:
        return REGISTRY[type(node)]
    except KeyError:
        raise TypeError(f"step '{node.step}': no operator is registered for {node.kind}") from None


def build(node: plan.Node, exits: list[list[Processor]], ctx: BuildContext) -> Any:
    """The processor of a non-chain step (see :class:`OperatorSpec`)."""
    make = spec_for(node).build
    if make is None:  # pragma: no cover - the compiler gives these no segment
        raise TypeError(f"step '{node.step}': {node.kind} has no processor")
    return make(node, exits, ctx)


def describe_mode(node: plan.Node, execution: Execution) -> str:
    """How ``node``'s operator runs its batches (``""`` when it has one way only)."""
    d = spec_for(node).describe
    return "" if d is None else d(node, execution)


def node_classes() -> Iterator[type[plan.Node]]:
    """Every concrete node class of :mod:`streams.plan.nodes`."""
    for v in vars(plan).values():
        if isinstance(v, type) and issubclass(v, plan.Node) and v is not plan.Node:
            yield v


__all__ = [
    "REGISTRY",
    "BuildContext",
    "OperatorSpec",
    "SegmentKind",
    "build",
    "describe_mode",
    "needs_watermark",
    "node_classes",
    "spec_for",
]
