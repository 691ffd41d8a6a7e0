"""``Stream``: the builder handle users chain steps on.

Every method appends one node to the topology's logical plan and returns a new handle; nothing
runs and nothing touches a broker. Mistakes raise :class:`~streams.core.errors.TopologyError`
naming the step at the line that made them.

Single-argument functions receive the record *value*: ``filter``, ``map_values``,
``flat_map_values``, ``key_by``, ``branch``. Functions that may change the key receive
``(key, value)``: ``map`` and ``flat_map`` (returning ``(key, value)`` pairs), and ``peek``.

>>> import streams as st
>>> topo = st.Topology("demo")
>>> big = topo.source("payments").filter(st.col("amount") > 100).key_by("card")
>>> big.to("big-payments")
>>> print(topo.describe())  # doctest: +ELLIPSIS
Topology demo
  Sub-topology 0  (source topics: payments)
...
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from operators.connectors.api import Sink
from operators.connectors.parquet import ParquetSink
from operators.registry import spec_for
from streams.core.errors import TopologyError
from streams.core.policies import Emit, ErrorPolicyName, check_error_policy
from streams.core.serde import Serde
from streams.dsl.async_steps import AsyncSteps
from streams.dsl.typed import sink_serdes
from streams.plan import nodes as plan
from streams.plan.agg import Agg
from streams.plan.expr import Col, Expr

if TYPE_CHECKING:
    from streams.dsl.table import GlobalTable, Table
    from streams.dsl.topology import Topology
    from streams.dsl.windowed import WindowedStream
    from streams.plan.windows import JoinWindows, WindowSpec

ValueFn = Callable[[Any], Any] | Expr | str


class Stream(AsyncSteps):
    """An unbounded stream of keyed records inside a :class:`~streams.dsl.topology.Topology`
    (its async steps, ``map_async`` and co., are in :mod:`streams.dsl.async_steps`)."""

    __slots__ = ("_step", "_topology")

    def __init__(self, topology: Topology, step: str) -> None:
        self._topology = topology
        self._step = step

    @property
    def step(self) -> str:
        """The id of the step that produces this stream."""
        return self._step

    @property
    def topology(self) -> Topology:
        return self._topology

    def __repr__(self) -> str:
        return f"Stream({self._topology.app_id!r}, step={self._step!r})"

    # -- helpers --------------------------------------------------------------------------
    def _name(self, kind: str, name: str | None) -> str:
        return self._topology.builder.step_name(kind, name)

    def _then(self, node: plan.Node) -> Stream:
        self._topology.builder.add(node)
        return Stream(self._topology, node.step)

    def on_error(self, policy: ErrorPolicyName) -> Stream:
        """Set the error policy of the step that made this stream, over the topology's.

        ``fail`` stops with an error naming the step and record; ``skip`` counts and logs the
        record; ``dead_letter`` sends it (key and value as the step saw them, with error
        headers) to ``{app_id}-dlq``. Applies to the user functions of stateless steps,
        aggregations, ``process`` and stream-table joins.

        >>> import streams as st
        >>> t = st.Topology("app")
        >>> s = t.source("in").map_values(lambda v: 1 / v["n"]).on_error("dead_letter")
        """
        node = self._topology.node(self._step)
        check_error_policy(policy, where=f"step '{self._step}'")
        if isinstance(node, plan.Source):
            raise TopologyError(
                f"step '{self._step}': a source's policy is set with source(..., on_error=...)"
            )
        if not spec_for(node).on_error:
            raise TopologyError(
                f"step '{self._step}': on_error() applies to steps that run user functions "
                f"(map, filter, aggregate, process, stream-table joins...), not {node.kind}"
            )
        self._topology.builder.set_policy(self._step, policy)
        return self

    # -- stateless steps ------------------------------------------------------------------
    def filter(self, predicate: ValueFn, *, name: str | None = None) -> Stream:
        """Keep records whose predicate (on the value) is true. ``col("n") > 3`` or a callable."""
        step = self._name("filter", name)
        return self._then(
            plan.Filter(
                step=step, parents=(self._step,), predicate=plan.as_fn(step, "predicate", predicate)
            )
        )

    def filter_not(self, predicate: ValueFn, *, name: str | None = None) -> Stream:
        """Drop records whose predicate is true (a null predicate drops the record too)."""
        step = self._name("filter", name)
        return self._then(
            plan.Filter(
                step=step,
                parents=(self._step,),
                negate=True,
                predicate=plan.as_fn(step, "predicate", predicate),
            )
        )

    def map(self, fn: Callable[[Any, Any], tuple[Any, Any]], *, name: str | None = None) -> Stream:
        """``fn(key, value) -> (new_key, new_value)``. Marks the key as changed."""
        step = self._name("map", name)
        f = plan.as_fn(step, "function", fn, 2, allow_expr=False)
        return self._then(plan.Map(step=step, parents=(self._step,), fn=f))

    def map_values(self, fn: ValueFn, *, name: str | None = None) -> Stream:
        """``fn(value) -> new_value`` (or an expression); the key is kept."""
        step = self._name("map-values", name)
        return self._then(
            plan.MapValues(step=step, parents=(self._step,), fn=plan.as_fn(step, "function", fn))
        )

    def map_batches(self, fn: Callable[[Any], Any], *, name: str | None = None) -> Stream:
        """``fn(pyarrow.RecordBatch) -> RecordBatch`` (or Table) of as many rows, in order: a
        vectorized function over the values of a micro-batch; keys and timestamps are kept."""
        step = self._name("map-batches", name)
        f = plan.as_fn(step, "function", fn, 1, allow_expr=False)
        return self._then(plan.MapBatches(step=step, parents=(self._step,), fn=f))

    def flat_map(
        self, fn: Callable[[Any, Any], Iterable[tuple[Any, Any]]], *, name: str | None = None
    ) -> Stream:
        """``fn(key, value) -> iterable of (key, value)``: zero or more records per record."""
        step = self._name("flat-map", name)
        f = plan.as_fn(step, "function", fn, 2, allow_expr=False)
        return self._then(plan.FlatMap(step=step, parents=(self._step,), fn=f))

    def flat_map_values(
        self, fn: Callable[[Any], Iterable[Any]], *, name: str | None = None
    ) -> Stream:
        """``fn(value) -> iterable of values``, each keeping the record's key."""
        step = self._name("flat-map-values", name)
        f = plan.as_fn(step, "function", fn, 1, allow_expr=False)
        return self._then(plan.FlatMapValues(step=step, parents=(self._step,), fn=f))

    def peek(self, fn: Callable[[Any, Any], Any], *, name: str | None = None) -> Stream:
        """Call ``fn(key, value)`` for its side effect; records pass unchanged."""
        step = self._name("peek", name)
        f = plan.as_fn(step, "function", fn, 2, allow_expr=False)
        return self._then(plan.Peek(step=step, parents=(self._step,), fn=f))

    def key_by(self, key: ValueFn, *, name: str | None = None) -> Stream:
        """Re-key by a field name, an expression or ``fn(value)``.

        A stateful step or a join downstream reads the records back through a repartition
        topic so that equal keys meet in one task.
        """
        step = self._name("key-by", name)
        return self._then(
            plan.KeyBy(step=step, parents=(self._step,), key=plan.as_fn(step, "key", key))
        )

    def with_columns(
        self,
        columns: Mapping[str, ValueFn] | None = None,
        /,
        *,
        name: str | None = None,
        **more: ValueFn,
    ) -> Stream:
        """Add or replace fields of dict values: ``with_columns(total=col("a") + col("b"))``.

        Every expression sees the value as it was before this step. Pass a dict positionally
        for a column called ``name``.
        """
        step = self._name("with-columns", name)
        cols = _columns(step, {**(columns or {}), **more})
        if not cols:
            raise TopologyError(f"step '{step}': with_columns() needs at least one column")
        return self._then(plan.WithColumns(step=step, parents=(self._step,), columns=cols))

    def select(self, *fields: str, name: str | None = None, **exprs: ValueFn) -> Stream:
        """Keep only the named fields (and computed ones).

        ``select("id", cents=col("eur") * 100)``
        """
        step = self._name("select", name)
        for f in fields:
            if not isinstance(f, str):
                raise TopologyError(f"step '{step}': select() takes field names, got {f!r}")
        cols = _columns(step, {**{f: Col(f) for f in fields}, **exprs})
        if not cols:
            raise TopologyError(f"step '{step}': select() needs at least one field")
        return self._then(plan.Select(step=step, parents=(self._step,), columns=cols))

    def branch(self, *predicates: ValueFn, name: str | None = None) -> list[Stream]:
        """Split by predicates: each record goes to the first stream whose predicate holds.

        Records matching none are dropped; pass ``lambda v: True`` last for a default branch.
        """
        step = self._name("branch", name)
        if not predicates:
            raise TopologyError(f"step '{step}': branch() needs at least one predicate")
        preds = tuple(plan.as_fn(step, f"predicate #{i}", p) for i, p in enumerate(predicates))
        self._topology.builder.add(plan.Branch(step=step, parents=(self._step,), predicates=preds))
        outs = []
        for i in range(len(preds)):
            out = plan.BranchOutput(step=f"{step}-{i}", parents=(step,), index=i)
            outs.append(Stream(self._topology, self._topology.builder.add(out)))
        return outs

    def merge(self, *others: Stream, name: str | None = None) -> Stream:
        """One stream with the records of this one and ``others``, interleaved."""
        step = self._name("merge", name)
        if not others:
            raise TopologyError(f"step '{step}': merge() needs at least one other stream")
        for o in others:
            if not isinstance(o, Stream):
                raise TopologyError(f"step '{step}': merge() takes streams, got {o!r}")
            if o._topology is not self._topology:
                raise TopologyError(
                    f"step '{step}': cannot merge step '{o.step}' of topology "
                    f"'{o._topology.app_id}' into topology '{self._topology.app_id}'"
                )
        parents = (self._step, *(o._step for o in others))
        if len(set(parents)) != len(parents):
            raise TopologyError(f"step '{step}': merge() got the same stream twice")
        return self._then(plan.Merge(step=step, parents=parents))

    def repartition(
        self,
        name: str,
        *,
        partitions: int | None = None,
        key: Serde | None = None,
        value: Serde | None = None,
    ) -> Stream:
        """Write through the internal topic ``{app_id}-{name}-repartition`` by the current key.

        ``name`` is required: it names a Kafka topic whose offsets must survive code changes.
        """
        step = self._topology.builder.step_name("repartition", plan.check_step_id(name))
        if partitions is not None and (not isinstance(partitions, int) or partitions < 1):
            raise TopologyError(f"step '{step}': partitions must be a positive int")
        topic = self._topology.internal_topic(step, "repartition")
        return self._then(
            plan.Repartition(
                step=step,
                parents=(self._step,),
                topic=topic,
                key_serde=key,
                value_serde=value,
                partitions=partitions,
            )
        )

    def group_by(self, key: ValueFn, *, name: str | None = None) -> Stream:
        """Same as :meth:`key_by`; reads well before ``aggregate``/``count``/``reduce``."""
        return self.key_by(key, name=name or self._topology.builder.auto_id("group-by"))

    # -- stateful steps (explicit ids: they name stores and changelog topics) --------------
    def _stateful_parent(self, step: str) -> str:
        """The parent for a stateful step: through a repartition topic if the key changed."""
        if not self._topology.key_changed(self._step):
            return self._step
        rstep = self._topology.builder.step_name("repartition", f"{step}-repartition")
        self._topology.builder.add(
            plan.Repartition(
                step=rstep,
                parents=(self._step,),
                auto=True,
                topic=self._topology.internal_topic(step, "repartition"),
            )
        )
        return rstep

    def aggregate(self, step: str, agg: Agg | None = None, /, **named: Agg) -> Stream:
        """Aggregate per key into the store ``step``; emits ``(key, result)`` updates.

        One aggregation gives its result as the value: ``aggregate("total", agg.sum("eur"))``;
        named ones give a dict: ``aggregate("stats", n=agg.count(), avg=agg.mean("eur"))``.
        Within a micro-batch, each key emits once, with its latest result.
        """
        t = self._topology
        plan.check_step_id(step)
        t.builder.check_new_step(step)
        if (agg is None) == (not named):
            raise TopologyError(
                f"step '{step}': aggregate() takes one aggregation or named ones, "
                "e.g. aggregate('s', agg.count()) or aggregate('s', n=agg.count())"
            )
        aggs = (("", agg),) if agg is not None else tuple(named.items())
        for n, a in aggs:
            if not isinstance(a, Agg):
                raise TopologyError(
                    f"step '{step}': {n or 'the aggregation'} must be an agg.* aggregation, "
                    f"got {type(a).__name__}"
                )
        t.builder.check_reads(step, self._step, frozenset().union(*(a.reads for _, a in aggs)))
        parent = self._stateful_parent(step)
        store = plan.StoreSpec(step)
        return self._then_stateful(
            plan.Aggregate(
                step=step, parents=(parent,), aggs=aggs, single=agg is not None, store=store
            )
        )

    def count(self, step: str) -> Stream:
        """Records per key, in the store ``step``."""
        from streams.plan import agg as aggs

        return self.aggregate(step, aggs.count())

    def reduce(self, step: str, fn: Callable[[Any, Any], Any]) -> Stream:
        """``fn(accumulated, value)`` per key, in the store ``step``."""
        from streams.plan import agg as aggs

        plan.as_fn(step, "reducer", fn, 2, allow_expr=False)
        return self.aggregate(step, aggs.reduce(fn))

    def process(
        self,
        step: str,
        fn: Callable[[Any], Any],
        *,
        stores: Iterable[str | plan.StoreSpec] = (),
        on_timer: Callable[[Any], Any] | None = None,
    ) -> Stream:
        """A low-level processor: ``fn(ctx)`` per record (Kafka Streams' Processor API).

        ``ctx`` has ``key``, ``value``, ``timestamp``, ``headers``, ``partition``,
        ``store(name)`` (a key-value store of Python objects) and ``forward(key, value)``.
        Records are forwarded only through ``ctx.forward``.
        """
        t = self._topology
        plan.check_step_id(step)
        t.builder.check_new_step(step)
        f = plan.as_fn(step, "processor", fn, 1, allow_expr=False)
        specs = tuple(
            s if isinstance(s, plan.StoreSpec) else plan.StoreSpec(plan.check_step_id(s))
            for s in stores
        )
        timer_fn, timer_store = None, None
        if on_timer is not None:
            timer_fn = plan.as_fn(step, "on_timer", on_timer, 1, allow_expr=False)
            timer_store = f"{step}-timers"
            specs = (*specs, plan.StoreSpec(timer_store))
        parent = self._stateful_parent(step) if specs else self._step
        return self._then_stateful(
            plan.Process(
                step=step,
                parents=(parent,),
                fn=f,
                store_specs=specs,
                on_timer=timer_fn,
                timer_store=timer_store,
            )
        )

    def window(self, step: str, spec: WindowSpec, *, emit: Emit = "final") -> WindowedStream:
        """Cut the stream into event-time windows for an aggregation in the store ``step``.

        ``spec`` is ``windows.tumbling(...)``, ``windows.hopping(...)``,
        ``windows.session(...)`` or ``windows.sliding(...)``; see
        :class:`~streams.dsl.windowed.WindowedStream`.
        """
        from streams.dsl.windowed import WindowedStream

        plan.check_step_id(step)
        self._topology.builder.check_new_step(step)
        return WindowedStream(self, step, spec, emit)

    # -- tables and joins ----------------------------------------------------------------------
    def as_table(self) -> Table:
        """The table an aggregation keeps (its store, no copy): ``counts.as_table()``."""
        from streams.dsl.table import Table

        node = self._topology.node(self._step)
        if not isinstance(node, plan.Aggregate | plan.ToTable):
            raise TopologyError(
                f"step '{self._step}' is a {node.kind}, not a table: "
                "use to_table(id) to materialize it"
            )
        return Table(self._topology, self._step)

    def to_table(self, step: str) -> Table:
        """Materialize this stream of upserts (``None`` value = delete) as a table in store
        ``step``."""
        from streams.dsl.table import Table

        plan.check_step_id(step)
        self._topology.builder.check_new_step(step)
        parent = self._stateful_parent(step)
        self._then_stateful(plan.ToTable(step=step, parents=(parent,), store=plan.StoreSpec(step)))
        return Table(self._topology, step)

    def join(
        self,
        table: Table | GlobalTable | Stream,
        joiner: Callable[[Any, Any], Any],
        *,
        how: Literal["inner", "left", "outer"] = "inner",
        key: ValueFn | None = None,
        window: JoinWindows | None = None,
        name: str | None = None,
    ) -> Stream:
        """Join each record with a table's current value: ``joiner(value, table_value)``.

        A :class:`~streams.dsl.table.Table` joins by the record's key (re-keyed streams go through a
        repartition topic first, which needs ``name``); a
        :class:`~streams.dsl.table.GlobalTable` joins by ``key`` extracted from the value. With
        ``how="left"`` a record without a match is joined with ``None``; ``"inner"`` drops it.

        Another :class:`Stream` joins within ``window`` (``windows.join_window(...)``), needs a
        ``name`` (it names the two buffer stores) and also takes ``how="outer"``; unmatched
        records of an outer side are emitted (with ``None``) only once their window closed.
        """
        from streams.dsl.joins import join_streams
        from streams.dsl.table import GlobalTable, Table

        t = self._topology
        if isinstance(table, Stream):
            return join_streams(self, table, joiner, how=how, window=window, name=name)
        step = t.builder.step_name("join", name)
        f = plan.as_fn(step, "joiner", joiner, 2, allow_expr=False)
        if how not in ("inner", "left"):
            raise TopologyError(f"step '{step}': how must be 'inner' or 'left', not {how!r}")
        if isinstance(table, GlobalTable):
            if key is None:
                raise TopologyError(f"step '{step}': a global table join needs key=")
            if table._topology is not t:
                raise TopologyError(
                    f"step '{step}': global table '{table.step}' belongs to another topology"
                )
            return self._then(
                plan.StreamGlobalJoin(
                    step=step,
                    parents=(self._step,),
                    global_step=table.step,
                    key=plan.as_fn(step, "key", key),
                    joiner=f,
                    how=how,
                )
            )
        if not isinstance(table, Table):
            raise TopologyError(
                f"step '{step}': join() takes a Table or GlobalTable, got {type(table).__name__}"
            )
        if table.topology is not t:
            raise TopologyError(f"step '{step}': table '{table.step}' belongs to another topology")
        if key is not None:
            raise TopologyError(
                f"step '{step}': a table joins by the record key; "
                f"use key_by() first (key= is for global tables)"
            )
        parent = self._step
        if t.key_changed(self._step):
            if name is None:
                raise TopologyError(
                    f"step '{step}': the stream was re-keyed, so the join reads it through a "
                    f"repartition topic; give the join a name= (it names that topic)"
                )
            parent = self._stateful_parent(step)
        return self._then(
            plan.StreamTableJoin(
                step=step, parents=(parent, table.step), table_step=table.step, joiner=f, how=how
            )
        )

    def _then_stateful(self, node: plan.Node) -> Stream:
        for s in node.stores:
            self._topology.builder.claim_store(s.name, node.step)
        return self._then(node)

    def to(
        self,
        topic: str,
        *,
        key: Serde | type | None = None,
        value: Serde | type | None = None,
        name: str | None = None,
    ) -> None:
        """Write every record to ``topic`` (serdes default to the topology's; a type gives
        its serde, as on a source: a record class's fields are checked against the stream's)."""
        step = self._name("sink", name)
        if not isinstance(topic, str) or not topic:
            raise TopologyError(f"step '{step}': to() needs a topic name")
        t = self._topology
        key, value = sink_serdes(t.builder, self._step, step, key, value)
        self._topology.builder.add(
            plan.Sink(
                step=step,
                parents=(self._step,),
                topic=topic,
                key_serde=key or t.default_key,
                value_serde=value or t.default_value,
            )
        )

    def to_sink(self, sink: Sink, *, name: str | None = None) -> None:
        """Write records through a connector ``sink`` (:mod:`streams.connectors`): it takes
        part in the task's commit, so what it publishes follows the processing guarantee.
        ``name`` (default: the sink's ``default_name``) names the step and its state store."""
        if not isinstance(sink, Sink):
            raise TopologyError(f"to_sink() takes a streams.connectors.Sink, got {sink!r}")
        step = self._name("sink", name if name is not None else sink.default_name)
        store = plan.StoreSpec(step)
        self._then_stateful(
            plan.SinkConnector(step=step, parents=(self._step,), sink=sink, store=store)
        )

    def to_parquet(
        self,
        path: str | os.PathLike[str],
        *,
        partition_by: Iterable[str] = (),
        rotate_every: float | timedelta | None = None,
        rotate_rows: int | None = None,
        key_column: str | None = None,
        timestamp_column: str | None = None,
        name: str | None = None,
    ) -> None:
        """Write records (mapping values; others as a ``value`` column) to Parquet files under
        ``path``: ``to_sink(ParquetSink(path, ...))``, see
        :class:`~operators.connectors.parquet.ParquetSink`. A file becomes visible only after
        the commit that covers its records, so readers see each committed record exactly once,
        also across crashes. ``name`` defaults to ``parquet-<directory name>``."""
        sink = ParquetSink(
            path,
            partition_by=partition_by,
            rotate_every=rotate_every,
            rotate_rows=rotate_rows,
            key_column=key_column,
            timestamp_column=timestamp_column,
        )
        self.to_sink(sink, name=name)


def _columns(step: str, cols: Mapping[str, Any]) -> tuple[tuple[str, plan.Fn], ...]:
    out = []
    for n, f in cols.items():
        if not isinstance(n, str) or not n:
            raise TopologyError(f"step '{step}': column names must be non-empty strings")
        out.append((n, plan.as_fn(step, f"column '{n}'", f)))
    return tuple(out)


__all__ = ["Stream"]
