"""The logical plan's nodes: frozen steps of a dataflow DAG, built by the DSL, read by the compiler.

Nodes hold no I/O and no runtime state; a node names its parents by step id. User functions
are wrapped in :class:`Fn` (a callable or a column expression), validated when the node is
built so a mistake is reported at the line that made it. By family: :mod:`.base` (the node
and its functions), :mod:`.stream` (sources, stateless steps, sinks), :mod:`.stateful`,
:mod:`.connectors` (user connectors),
:mod:`.async_call` (steps that await a coroutine per record).

>>> from streams.plan.expr import col
>>> f = as_fn("big", "predicate", col("amount") > 5)
>>> f.label
"(col('amount') > 5)"
"""

from streams.plan.nodes.async_call import FilterAsync, FlatMapAsync, MapAsync, as_async_fn
from streams.plan.nodes.base import STEP_ID, Fn, Node, StoreSpec, as_fn, check_step_id
from streams.plan.nodes.connectors import SinkConnector, SourceConnector
from streams.plan.nodes.stateful import (
    Aggregate,
    FkResolve,
    FkRespond,
    FkSubscribe,
    GlobalTableSource,
    Process,
    StreamGlobalJoin,
    StreamStreamJoin,
    StreamTableJoin,
    TableFilter,
    TableMapValues,
    TableTableJoin,
    ToTable,
    WindowedAggregate,
)
from streams.plan.nodes.stream import (
    Branch,
    BranchOutput,
    Filter,
    FlatMap,
    FlatMapValues,
    KeyBy,
    LateOutput,
    Map,
    MapBatches,
    MapValues,
    Merge,
    Peek,
    Repartition,
    Select,
    Sink,
    Source,
    WithColumns,
)

__all__ = [
    "STEP_ID",
    "Aggregate",
    "Branch",
    "BranchOutput",
    "Filter",
    "FilterAsync",
    "FkResolve",
    "FkRespond",
    "FkSubscribe",
    "FlatMap",
    "FlatMapAsync",
    "FlatMapValues",
    "Fn",
    "GlobalTableSource",
    "KeyBy",
    "LateOutput",
    "Map",
    "MapAsync",
    "MapBatches",
    "MapValues",
    "Merge",
    "Node",
    "Peek",
    "Process",
    "Repartition",
    "Select",
    "Sink",
    "SinkConnector",
    "Source",
    "SourceConnector",
    "StoreSpec",
    "StreamGlobalJoin",
    "StreamStreamJoin",
    "StreamTableJoin",
    "TableFilter",
    "TableMapValues",
    "TableTableJoin",
    "ToTable",
    "WindowedAggregate",
    "WithColumns",
    "as_async_fn",
    "as_fn",
    "check_step_id",
]
