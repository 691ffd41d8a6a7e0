"""The logical plan: frozen nodes of a dataflow DAG, built by the DSL and read by the compiler.

Nodes hold no I/O and no runtime state; a node names its parents by step id. User functions
are wrapped in :class:`Fn` (a callable or a column expression), validated when the node is
built so a mistake is reported at the line that made it.

>>> from streams.plan.expr import col
>>> f = as_fn("big", "predicate", col("amount") > 5)
>>> f.label
"(col('amount') > 5)"
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from streams.core.errors import TopologyError
from streams.core.policies import Emit, ErrorPolicyName
from streams.core.serde import KEY, PICKLE, Serde
from streams.plan.expr import Col, Expr

if TYPE_CHECKING:
    from streams.plan.agg import Agg
    from streams.plan.windows import JoinWindows, WindowSpec

STEP_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def check_step_id(step: str) -> str:
    if not isinstance(step, str) or not STEP_ID.match(step):
        raise TopologyError(
            f"step id {step!r} is not valid: use lowercase letters, digits and '-' "
            "(it names state stores and Kafka topics)"
        )
    return step


@dataclass(frozen=True, slots=True)
class Fn:
    """A user function: a Python callable taking ``nargs`` arguments, or a column expression."""

    obj: Callable[..., Any] | Expr
    nargs: int = 1

    @property
    def is_expr(self) -> bool:
        return isinstance(self.obj, Expr)

    def as_callable(self) -> Callable[..., Any]:
        """A plain function: the compiled expression (``value -> result``) or the callable."""
        return self.obj.compile() if isinstance(self.obj, Expr) else self.obj

    @property
    def label(self) -> str:
        if isinstance(self.obj, Expr):
            return repr(self.obj)
        return getattr(self.obj, "__qualname__", None) or repr(self.obj)


def _accepts(fn: Callable[..., Any], nargs: int) -> bool:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: trust the caller
        return True
    try:
        sig.bind(*([None] * nargs))
    except TypeError:
        return False
    return True


def as_fn(step: str, what: str, f: Any, nargs: int = 1, *, allow_expr: bool = True) -> Fn:
    """Validate a user function for ``step``; a ``str`` means the field of that name."""
    if allow_expr and isinstance(f, str):
        f = Col(f)
    if isinstance(f, Expr):
        if not allow_expr:
            raise TopologyError(f"step '{step}': {what} must be a callable, not an expression")
        return Fn(f, nargs)
    if not callable(f):
        raise TopologyError(
            f"step '{step}': {what} must be callable"
            + (", a column expression or a field name" if allow_expr else "")
            + f", got {type(f).__name__} {f!r}"
        )
    if not _accepts(f, nargs):
        name = getattr(f, "__qualname__", repr(f))
        args = "(value)" if nargs == 1 else "(key, value)"
        raise TopologyError(f"step '{step}': {what} {name} must accept {nargs} argument(s) {args}")
    return Fn(f, nargs)


@dataclass(frozen=True)
class StoreSpec:
    """A state store a step owns; it is backed by the topic ``{app_id}-{name}-changelog``."""

    name: str
    kind: Literal["kv", "window", "session"] = "kv"
    key_serde: Serde = KEY
    value_serde: Serde = PICKLE
    retention_ms: int | None = None
    #: a table read from a (compacted) topic uses that topic as its changelog: no second copy
    source_topic: str | None = None


@dataclass(frozen=True, kw_only=True)
class Node:
    """A step of the logical plan."""

    step: str
    parents: tuple[str, ...]

    kind: ClassVar[str] = "node"
    #: Stateless, record-at-a-time: may be fused into a chain with its neighbours.
    fusable: ClassVar[bool] = False
    #: The output key may differ from the input key (a stateful step downstream repartitions).
    changes_key: ClassVar[bool] = False

    def detail(self) -> str:
        """One line for ``describe()``."""
        return ""

    @property
    def stores(self) -> tuple[StoreSpec, ...]:
        """The state stores this step owns."""
        return ()


@dataclass(frozen=True, kw_only=True)
class Source(Node):
    topic: str
    key_serde: Serde | None = None
    value_serde: Serde | None = None
    timestamp: Fn | None = None
    max_out_of_orderness_ms: int = 0
    idle_timeout_ms: int | None = None
    #: what happens to a record that does not decode (or has no valid timestamp)
    on_error: ErrorPolicyName = "fail"
    dead_letter_topic: str | None = None
    #: a ``pyarrow.Schema`` or ``"infer"``: JSON or Avro values decode straight into Arrow
    schema: Any = None
    kind: ClassVar[str] = "source"

    def detail(self) -> str:
        ts = f", timestamp={self.timestamp.label}" if self.timestamp else ""
        if self.max_out_of_orderness_ms:
            ts += f", out-of-orderness={self.max_out_of_orderness_ms} ms"
        if self.idle_timeout_ms is not None:
            ts += f", idle-timeout={self.idle_timeout_ms} ms"
        if self.schema is not None:
            ts += ", schema=" + ("inferred" if isinstance(self.schema, str) else "declared")
        return f"topic={self.topic}{ts}"


@dataclass(frozen=True, kw_only=True)
class Map(Node):
    fn: Fn
    kind: ClassVar[str] = "map"
    fusable: ClassVar[bool] = True
    changes_key: ClassVar[bool] = True

    def detail(self) -> str:
        return self.fn.label


@dataclass(frozen=True, kw_only=True)
class MapValues(Node):
    fn: Fn
    kind: ClassVar[str] = "map_values"
    fusable: ClassVar[bool] = True

    def detail(self) -> str:
        return self.fn.label


@dataclass(frozen=True, kw_only=True)
class Filter(Node):
    predicate: Fn
    negate: bool = False
    kind: ClassVar[str] = "filter"
    fusable: ClassVar[bool] = True

    def detail(self) -> str:
        return ("not " if self.negate else "") + self.predicate.label


@dataclass(frozen=True, kw_only=True)
class FlatMap(Node):
    fn: Fn
    kind: ClassVar[str] = "flat_map"
    fusable: ClassVar[bool] = True
    changes_key: ClassVar[bool] = True

    def detail(self) -> str:
        return self.fn.label


@dataclass(frozen=True, kw_only=True)
class FlatMapValues(Node):
    fn: Fn
    kind: ClassVar[str] = "flat_map_values"
    fusable: ClassVar[bool] = True

    def detail(self) -> str:
        return self.fn.label


@dataclass(frozen=True, kw_only=True)
class Peek(Node):
    fn: Fn
    kind: ClassVar[str] = "peek"
    fusable: ClassVar[bool] = True

    def detail(self) -> str:
        return self.fn.label


@dataclass(frozen=True, kw_only=True)
class KeyBy(Node):
    key: Fn
    kind: ClassVar[str] = "key_by"
    fusable: ClassVar[bool] = True
    changes_key: ClassVar[bool] = True

    def detail(self) -> str:
        return self.key.label


@dataclass(frozen=True, kw_only=True)
class WithColumns(Node):
    columns: tuple[tuple[str, Fn], ...]
    kind: ClassVar[str] = "with_columns"
    fusable: ClassVar[bool] = True

    def detail(self) -> str:
        return ", ".join(f"{n}={f.label}" for n, f in self.columns)


@dataclass(frozen=True, kw_only=True)
class Select(Node):
    columns: tuple[tuple[str, Fn], ...]
    kind: ClassVar[str] = "select"
    fusable: ClassVar[bool] = True

    def detail(self) -> str:
        return ", ".join(
            f"{n}={f.label}" if f.label != f"col({n!r})" else n for n, f in self.columns
        )


@dataclass(frozen=True, kw_only=True)
class Branch(Node):
    """Routes each record to the first output whose predicate holds (others: dropped)."""

    predicates: tuple[Fn, ...]
    kind: ClassVar[str] = "branch"
    fusable: ClassVar[bool] = True

    def detail(self) -> str:
        return " | ".join(p.label for p in self.predicates)


@dataclass(frozen=True, kw_only=True)
class BranchOutput(Node):
    index: int
    kind: ClassVar[str] = "branch_output"
    fusable: ClassVar[bool] = True

    def detail(self) -> str:
        return f"#{self.index}"


@dataclass(frozen=True, kw_only=True)
class Merge(Node):
    kind: ClassVar[str] = "merge"
    fusable: ClassVar[bool] = True


@dataclass(frozen=True, kw_only=True)
class Repartition(Node):
    """Writes to an internal topic keyed by the current key; the downstream reads it back."""

    topic: str
    key_serde: Serde | None = None
    value_serde: Serde | None = None
    partitions: int | None = None
    auto: bool = False
    #: take the partition count of this topic (a foreign-key join's subscriptions follow the
    #: right table), instead of the writing sub-topology's inputs
    partitions_like: str | None = None
    kind: ClassVar[str] = "repartition"

    def detail(self) -> str:
        n = f", partitions={self.partitions}" if self.partitions else ""
        return f"topic={self.topic}{n}" + (" (inserted for a key change)" if self.auto else "")


@dataclass(frozen=True, kw_only=True)
class Sink(Node):
    topic: str
    key_serde: Serde | None = None
    value_serde: Serde | None = None
    kind: ClassVar[str] = "sink"

    def detail(self) -> str:
        return f"topic={self.topic}"


@dataclass(frozen=True, kw_only=True)
class ParquetSink(Node):
    """Writes records to Parquet files under ``path``, visible only once their offsets commit.

    Its store keeps the sink's commit state (staged segments, files to publish), so a restart
    publishes exactly the committed records (see :mod:`operators.parquet_sink`).
    """

    path: str
    partition_by: tuple[str, ...] = ()
    rotate_every_ms: int | None = None
    rotate_rows: int | None = None
    key_column: str | None = None
    timestamp_column: str | None = None
    store: StoreSpec
    kind: ClassVar[str] = "parquet_sink"

    @property
    def stores(self) -> tuple[StoreSpec, ...]:
        return (self.store,)

    def detail(self) -> str:
        by = f" partition_by={list(self.partition_by)}" if self.partition_by else ""
        return f"path={self.path}{by}; store={self.store.name}"


@dataclass(frozen=True, kw_only=True)
class Aggregate(Node):
    """Per-key aggregation into a key-value store; emits the new result per key per batch."""

    aggs: tuple[tuple[str, Agg], ...]
    single: bool  # one unnamed aggregation: the value is its result, not a dict
    store: StoreSpec
    kind: ClassVar[str] = "aggregate"

    @property
    def stores(self) -> tuple[StoreSpec, ...]:
        return (self.store,)

    def detail(self) -> str:
        aggs = ", ".join(repr(a) if self.single else f"{n}={a!r}" for n, a in self.aggs)
        return f"{aggs}; store={self.store.name}"


@dataclass(frozen=True, kw_only=True)
class Process(Node):
    """A user processor ``fn(ctx)`` with access to its stores and ``ctx.forward()``."""

    fn: Fn
    store_specs: tuple[StoreSpec, ...] = ()
    on_timer: Fn | None = None
    timer_store: str | None = None  # "{step}-timers" when on_timer is given
    kind: ClassVar[str] = "process"
    changes_key: ClassVar[bool] = True  # ctx.forward() may emit any key (as in Kafka Streams)

    @property
    def stores(self) -> tuple[StoreSpec, ...]:
        return self.store_specs

    def detail(self) -> str:
        names = ", ".join(s.name for s in self.store_specs)
        return f"{self.fn.label}; stores={names or 'none'}"


@dataclass(frozen=True, kw_only=True)
class WindowedAggregate(Node):
    """Per-(key, window) aggregation; exit 0: results, exit 1: late records."""

    window: WindowSpec
    aggs: tuple[tuple[str, Agg], ...]
    single: bool
    emit: Emit
    store: StoreSpec
    kind: ClassVar[str] = "window_aggregate"

    @property
    def stores(self) -> tuple[StoreSpec, ...]:
        return (self.store,)

    def detail(self) -> str:
        aggs = ", ".join(repr(a) if self.single else f"{n}={a!r}" for n, a in self.aggs)
        return f"{self.window}, emit={self.emit}: {aggs}; store={self.store.name}"


@dataclass(frozen=True, kw_only=True)
class ToTable(Node):
    """Materializes a stream of upserts (``None`` value = delete) into a key-value store; its
    output is the table's change stream."""

    store: StoreSpec
    kind: ClassVar[str] = "table"

    @property
    def stores(self) -> tuple[StoreSpec, ...]:
        return (self.store,)

    def detail(self) -> str:
        src = self.store.source_topic
        return f"store={self.store.name}" + (f", changelog=source topic {src}" if src else "")


@dataclass(frozen=True, kw_only=True)
class TableFilter(Node):
    """A derived table: rows failing the predicate become deletions (tombstones propagate)."""

    predicate: Fn
    negate: bool = False
    kind: ClassVar[str] = "table_filter"
    fusable: ClassVar[bool] = True

    def detail(self) -> str:
        return ("not " if self.negate else "") + self.predicate.label


@dataclass(frozen=True, kw_only=True)
class TableMapValues(Node):
    """A derived table: values mapped, deletions kept."""

    fn: Fn
    kind: ClassVar[str] = "table_map_values"
    fusable: ClassVar[bool] = True

    def detail(self) -> str:
        return self.fn.label


@dataclass(frozen=True, kw_only=True)
class StreamTableJoin(Node):
    """Each stream record joins the table's current value for its key (parents: stream, table;
    the table edge is a lookup, not a data flow)."""

    table_step: str
    joiner: Fn
    how: Literal["inner", "left"]
    kind: ClassVar[str] = "stream_table_join"

    def detail(self) -> str:
        return f"{self.how} join table {self.table_step}: {self.joiner.label}"


@dataclass(frozen=True, kw_only=True)
class StreamStreamJoin(Node):
    """Records of two co-partitioned streams meeting within a join window (parents: left,
    right). Both sides are buffered in window stores; unmatched records of an outer side are
    emitted only once their window has closed."""

    window: JoinWindows
    joiner: Fn
    how: Literal["inner", "left", "outer"]
    left_store: StoreSpec
    right_store: StoreSpec
    kind: ClassVar[str] = "stream_stream_join"

    @property
    def stores(self) -> tuple[StoreSpec, ...]:
        return (self.left_store, self.right_store)

    def detail(self) -> str:
        return f"{self.how} join within {self.window}: {self.joiner.label}"


@dataclass(frozen=True, kw_only=True)
class TableTableJoin(Node):
    """Two tables joined on their key (parents: left, right); the result is a table whose
    change stream carries deletions when a row stops matching."""

    joiner: Fn
    how: Literal["inner", "left", "outer"]
    kind: ClassVar[str] = "table_table_join"

    def detail(self) -> str:
        return f"{self.how} join tables: {self.joiner.label}"


@dataclass(frozen=True, kw_only=True)
class FkSubscribe(Node):
    """Foreign-key join, left side: a left row's foreign key changed; (un)subscribe it at the
    right table's partition (output keyed by the foreign key)."""

    fk: Fn
    store: StoreSpec  # left key -> foreign key last subscribed
    kind: ClassVar[str] = "fk_subscribe"

    @property
    def stores(self) -> tuple[StoreSpec, ...]:
        return (self.store,)

    def detail(self) -> str:
        return f"foreign key {self.fk.label}"


@dataclass(frozen=True, kw_only=True)
class FkRespond(Node):
    """Foreign-key join, right side (parents: subscriptions, right table): answers each
    subscription, and every subscriber of a changed right row, with the right value."""

    table_getter_step: str
    store: StoreSpec  # foreign key -> subscribed left keys
    kind: ClassVar[str] = "fk_respond"

    @property
    def stores(self) -> tuple[StoreSpec, ...]:
        return (self.store,)


@dataclass(frozen=True, kw_only=True)
class FkResolve(Node):
    """Foreign-key join, back on the left (parents: responses, left table as a lookup): joins
    the current left row with the right value, dropping answers to an outdated foreign key."""

    table_step: str
    fk: Fn
    joiner: Fn
    how: Literal["inner", "left"]
    kind: ClassVar[str] = "fk_join"

    def detail(self) -> str:
        return f"{self.how} foreign-key join on {self.fk.label}: {self.joiner.label}"


@dataclass(frozen=True, kw_only=True)
class GlobalTableSource(Node):
    """A table every worker holds whole (all partitions); no co-partitioning needed."""

    topic: str
    key_serde: Serde
    value_serde: Serde
    kind: ClassVar[str] = "global_table"

    def detail(self) -> str:
        return f"topic={self.topic}"


@dataclass(frozen=True, kw_only=True)
class StreamGlobalJoin(Node):
    """Each stream record looks up a global table by a key extracted from it."""

    global_step: str
    key: Fn
    joiner: Fn
    how: Literal["inner", "left"]
    kind: ClassVar[str] = "stream_global_join"

    def detail(self) -> str:
        return f"{self.how} join global table {self.global_step} on {self.key.label}"


@dataclass(frozen=True, kw_only=True)
class LateOutput(Node):
    """The records a windowed step found too late (behind the watermark beyond grace)."""

    kind: ClassVar[str] = "late"
    fusable: ClassVar[bool] = True


__all__ = [
    "STEP_ID",
    "Aggregate",
    "Branch",
    "BranchOutput",
    "Filter",
    "FkResolve",
    "FkRespond",
    "FkSubscribe",
    "FlatMap",
    "FlatMapValues",
    "Fn",
    "GlobalTableSource",
    "KeyBy",
    "LateOutput",
    "Map",
    "MapValues",
    "Merge",
    "Node",
    "Peek",
    "Process",
    "Repartition",
    "Select",
    "Sink",
    "Source",
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
    "as_fn",
    "check_step_id",
]
