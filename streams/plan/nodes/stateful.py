"""Nodes that keep state: aggregations, windows, tables, joins, processors.

>>> StoreSpec("counts").kind
'kv'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from streams.core.policies import Emit
from streams.core.serde import Serde
from streams.plan.nodes.base import Fn, Node, StoreSpec

if TYPE_CHECKING:
    from streams.plan.agg import Agg
    from streams.plan.schema import Fields, Schemas
    from streams.plan.windows import JoinWindows, WindowSpec

#: the fields a windowed aggregation adds to its results
WINDOW_FIELDS = ("window_start", "window_end")


def _agg_reads(aggs: tuple[tuple[str, Agg], ...]) -> frozenset[str]:
    return frozenset().union(*(a.reads for _, a in aggs))


@dataclass(frozen=True, kw_only=True)
class Aggregate(Node):
    """Per-key aggregation into a key-value store; emits the new result per key per batch."""

    aggs: tuple[tuple[str, Agg], ...]
    single: bool  # one unnamed aggregation: the value is its result, not a dict
    store: StoreSpec
    kind: ClassVar[str] = "aggregate"

    def reads(self) -> frozenset[str]:
        return _agg_reads(self.aggs)

    def output_fields(self, schemas: Schemas) -> Fields:
        # one unnamed aggregation: its result is the value (a count, or a record of a reduce)
        return None if self.single else tuple(n for n, _ in self.aggs)

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

    def reads(self) -> frozenset[str]:
        return _agg_reads(self.aggs)

    def output_fields(self, schemas: Schemas) -> Fields:
        return tuple(dict.fromkeys([*(n for n, _ in self.aggs), *WINDOW_FIELDS]))

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
    keeps_values: ClassVar[bool] = True

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
    keeps_values: ClassVar[bool] = True
    selects: ClassVar[bool] = True

    def reads(self) -> frozenset[str]:
        return self.predicate.columns()

    def detail(self) -> str:
        return ("not " if self.negate else "") + self.predicate.label


@dataclass(frozen=True, kw_only=True)
class TableMapValues(Node):
    """A derived table: values mapped, deletions kept."""

    fn: Fn
    kind: ClassVar[str] = "table_map_values"
    fusable: ClassVar[bool] = True

    def reads(self) -> frozenset[str]:
        return self.fn.columns()

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

    def reads(self) -> frozenset[str]:
        return self.fk.columns()

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

    def reads(self) -> frozenset[str]:
        return self.key.columns()

    def detail(self) -> str:
        return f"{self.how} join global table {self.global_step} on {self.key.label}"


__all__ = [
    "Aggregate",
    "FkResolve",
    "FkRespond",
    "FkSubscribe",
    "GlobalTableSource",
    "Process",
    "StreamGlobalJoin",
    "StreamStreamJoin",
    "StreamTableJoin",
    "TableFilter",
    "TableMapValues",
    "TableTableJoin",
    "ToTable",
    "WindowedAggregate",
]
