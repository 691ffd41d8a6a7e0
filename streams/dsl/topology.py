"""``Topology``: the application's dataflow, declared once and compiled to tasks.

>>> import streams as st
>>> topo = st.Topology("word-count")
>>> lines = topo.source("lines", value=st.serde.STR)
>>> lines.flat_map_values(str.split).to("words", value=st.serde.STR)
>>> [n.step for n in topo.nodes]
['source-lines', 'flat-map-values-1', 'sink-2']
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from streams.core.errors import TopologyError
from streams.core.policies import ErrorPolicyName, Execution, check_error_policy, check_execution
from streams.core.serde import JSON, STR, Serde
from streams.dsl.stream import Stream
from streams.dsl.table import GlobalTable, Table
from streams.plan import nodes as plan
from streams.plan.windows import to_ms

if TYPE_CHECKING:
    from streams.compiler.compile import PhysicalPlan

_APP_ID = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$")
_TOPIC = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")


class Topology:
    """A named dataflow. ``app_id`` names the consumer group, state stores and internal topics.

    Serdes default to ``key=STR`` and ``value=JSON`` for sources and sinks.
    """

    def __init__(
        self,
        app_id: str,
        *,
        default_key: Serde = STR,
        default_value: Serde = JSON,
        on_error: ErrorPolicyName = "fail",
        execution: Execution = "auto",
    ) -> None:
        if not isinstance(app_id, str) or not _APP_ID.match(app_id):
            raise TopologyError(
                f"application id {app_id!r} is not valid: use letters, digits, '.', '_' and '-'"
            )
        self.app_id = app_id
        check_error_policy(on_error)
        #: policy for a user function (map, filter, ...) failing on a record; dead letters go
        #: to ``{app_id}-dlq``
        self.on_error = on_error
        self._step_policies: dict[str, str] = {}  # stream.on_error(...) overrides, per step
        self.default_key = default_key
        self.default_value = default_value
        self._nodes: dict[str, plan.Node] = {}
        self._children: dict[str, list[str]] = {}
        self._counter = 0
        self._stores: dict[str, str] = {}  # store name -> owning step
        self._compiled: dict[bool, PhysicalPlan] = {}
        self.execution = execution

    @property
    def execution(self) -> Execution:
        """How fused chains of expression steps run: ``"row"`` (generated Python over row
        batches), ``"columnar"`` (on Arrow, converting row batches at the chain's entry) or
        ``"auto"`` (on Arrow when the batch arrives columnar: a source with a ``schema``)."""
        return self._execution

    @execution.setter
    def execution(self, mode: Execution) -> None:
        check_execution(mode)
        self._execution = mode
        self._compiled.clear()

    # -- building -------------------------------------------------------------------------
    def source(
        self,
        topic: str,
        *,
        key: Serde | None = None,
        value: Serde | None = None,
        timestamp: Any = None,
        max_out_of_orderness: int | timedelta = 0,
        idle_timeout: int | timedelta | None = None,
        on_error: ErrorPolicyName = "fail",
        dead_letter_topic: str | None = None,
        name: str | None = None,
        schema: Any = None,
    ) -> Stream:
        """A stream read from ``topic``.

        ``timestamp`` gives each record its event time in epoch milliseconds: ``None`` (the
        Kafka record's timestamp), a field name, a column expression or ``fn(value)``.
        ``schema`` (a ``pyarrow.Schema``, or ``"infer"``: from the first batch) declares the
        fields of JSON values: a batch decodes straight into Arrow (records carry every field
        of the schema, null when absent; other fields are dropped) and columnar chains run on it.
        Avro values (``AvroSerde``) take a schema too; ``"infer"`` maps their Avro schema
        (:mod:`operators.arrow_avro`).
        """
        if not isinstance(topic, str) or not _TOPIC.match(topic):
            raise TopologyError(f"source topic {topic!r} is not a valid Kafka topic name")
        for n in self._nodes.values():
            if isinstance(n, plan.Source) and n.topic == topic:
                raise TopologyError(
                    f"topic '{topic}' is already read by step '{n.step}': reuse that stream "
                    "(a topic has one source per topology)"
                )
        step = self._step_name("source", name if name is not None else f"source-{_slug(topic)}")
        ts = plan.as_fn(step, "timestamp", timestamp) if timestamp is not None else None
        check_error_policy(on_error, where=f"step '{step}'")
        ooo = to_ms(max_out_of_orderness, f"step '{step}': max_out_of_orderness")
        idle = None if idle_timeout is None else to_ms(idle_timeout, f"step '{step}': idle_timeout")
        if ooo < 0 or (idle is not None and idle <= 0):
            raise TopologyError(
                f"step '{step}': max_out_of_orderness must be >= 0 and idle_timeout > 0"
            )
        self._add(
            plan.Source(
                step=step,
                parents=(),
                topic=topic,
                key_serde=key or self.default_key,
                value_serde=value or self.default_value,
                timestamp=ts,
                max_out_of_orderness_ms=ooo,
                idle_timeout_ms=idle,
                on_error=on_error,
                dead_letter_topic=(dead_letter_topic or f"{self.app_id}-dlq")
                if on_error == "dead_letter"
                else None,
                schema=_check_schema(step, schema, value or self.default_value),
            )
        )
        return Stream(self, step)

    def table(
        self,
        topic: str,
        *,
        key: Serde | None = None,
        value: Serde | None = None,
        name: str | None = None,
    ) -> Table:
        """A table read from ``topic`` (compacted: the latest value per key; ``None`` deletes).

        The topic itself is the store's changelog: restoring reads it, nothing is copied.
        """
        slug = _slug(topic)
        src = self.source(topic, key=key, value=value, name=f"source-{slug}")
        step = self._step_name("table", name if name is not None else f"table-{slug}")
        store = plan.StoreSpec(
            step,
            key_serde=key or self.default_key,
            value_serde=value or self.default_value,
            source_topic=topic,
        )
        self._claim_store(step, step)
        self._add(plan.ToTable(step=step, parents=(src.step,), store=store))
        return Table(self, step)

    def global_table(
        self,
        topic: str,
        *,
        key: Serde | None = None,
        value: Serde | None = None,
        name: str | None = None,
    ) -> GlobalTable:
        """A table every worker holds entirely (all partitions of ``topic``)."""
        if not isinstance(topic, str) or not _TOPIC.match(topic):
            raise TopologyError(f"global table topic {topic!r} is not a valid Kafka topic name")
        step = self._step_name("global", name if name is not None else f"global-{_slug(topic)}")
        self._add(
            plan.GlobalTableSource(
                step=step,
                parents=(),
                topic=topic,
                key_serde=key or self.default_key,
                value_serde=value or self.default_value,
            )
        )
        return GlobalTable(self, step)

    def stream(self, step: str) -> Stream:
        """The stream produced by an existing step (for building from a stored id)."""
        if step not in self._nodes:
            raise TopologyError(f"unknown step '{step}' in topology '{self.app_id}'")
        return Stream(self, step)

    def internal_topic(self, step: str, kind: str) -> str:
        """The name of a topic owned by this application: ``{app_id}-{step}-{kind}``."""
        return f"{self.app_id}-{step}-{kind}"

    def _auto_id(self, kind: str) -> str:
        self._counter += 1
        return f"{kind}-{self._counter}"

    def _step_name(self, kind: str, name: str | None) -> str:
        if name is None:
            name = self._auto_id(kind)
        plan.check_step_id(name)
        self._check_new_step(name)
        return name

    def _check_new_step(self, name: str) -> None:
        if name in self._nodes:
            raise TopologyError(f"duplicate step id '{name}': step ids must be unique")

    def _claim_store(self, store: str, step: str) -> None:
        owner = self._stores.get(store)
        if owner is not None and owner != step:
            raise TopologyError(
                f"step '{step}': store '{store}' already belongs to step '{owner}' "
                "(a store has one owner; its name is also its changelog topic's)"
            )
        self._stores[store] = step

    def _add(self, node: plan.Node) -> str:
        if node.step in self._nodes:
            raise TopologyError(f"duplicate step id '{node.step}': step ids must be unique")
        for p in node.parents:
            if p not in self._nodes:
                raise TopologyError(f"step '{node.step}': unknown parent step '{p}'")
            if isinstance(self._nodes[p], plan.Sink):
                raise TopologyError(f"step '{node.step}': step '{p}' is a sink and has no output")
            if isinstance(self._nodes[p], plan.Branch) and not isinstance(node, plan.BranchOutput):
                raise TopologyError(f"step '{node.step}': use the streams returned by branch '{p}'")
        if isinstance(node, plan.Sink):
            self._check_no_cycle(node)
        self._nodes[node.step] = node
        self._children[node.step] = []
        for p in node.parents:
            self._children[p].append(node.step)
        self._compiled.clear()
        return node.step

    def _check_no_cycle(self, sink: plan.Sink) -> None:
        for src in self.upstream_sources(sink.parents[0]):
            if src.topic == sink.topic:
                raise TopologyError(
                    f"step '{sink.step}': writing to '{sink.topic}', which step '{src.step}' "
                    "reads upstream of it, would loop forever"
                )

    # -- reading the plan ---------------------------------------------------------------
    @property
    def nodes(self) -> list[plan.Node]:
        """The logical plan's nodes in the order they were added (a topological order)."""
        return list(self._nodes.values())

    def policy_for(self, step: str | None) -> str:
        """The error policy of ``step``: its own (``stream.on_error``) or the topology's."""
        return self._step_policies.get(step or "", self.on_error)

    def _set_policy(self, step: str, policy: str) -> None:
        self._step_policies[step] = policy
        self._compiled.clear()

    def node(self, step: str) -> plan.Node:
        try:
            return self._nodes[step]
        except KeyError:
            raise TopologyError(f"unknown step '{step}' in topology '{self.app_id}'") from None

    def children(self, step: str) -> list[str]:
        return list(self._children[step])

    def upstream_sources(self, step: str) -> list[plan.Source]:
        seen: set[str] = set()
        out: list[plan.Source] = []
        todo = [step]
        while todo:
            s = todo.pop()
            if s in seen:
                continue
            seen.add(s)
            n = self._nodes[s]
            if isinstance(n, plan.Source):
                out.append(n)
            todo.extend(n.parents)
        return out

    def key_changed(self, step: str) -> bool:
        """Whether records at ``step`` may carry a key other than their partition's."""
        n = self._nodes[step]
        if isinstance(n, plan.Source | plan.Repartition):
            return False
        if n.changes_key:
            return True
        return any(self.key_changed(p) for p in n.parents)

    # -- compiling ------------------------------------------------------------------------
    def compile(self, *, fuse: bool = True) -> PhysicalPlan:
        """Validate and compile to the physical plan (cached until the topology changes)."""
        if fuse not in self._compiled:
            from streams.compiler.compile import compile_topology

            self._compiled[fuse] = compile_topology(self, fuse=fuse)
        return self._compiled[fuse]

    def describe(self, format: Literal["text", "mermaid"] = "text") -> str:
        """The compiled topology: sub-topologies, fused chains, stores and internal topics."""
        from streams.compiler.describe import describe_mermaid, describe_text

        compiled = self.compile()
        return describe_text(compiled) if format == "text" else describe_mermaid(compiled)

    def __repr__(self) -> str:
        return f"Topology({self.app_id!r}, steps={len(self._nodes)})"


def _check_schema(step: str, schema: Any, value: Serde) -> Any:
    if schema is None:
        return None
    import pyarrow as pa  # type: ignore[import-untyped]

    if not (isinstance(schema, pa.Schema) or (isinstance(schema, str) and schema == "infer")):
        raise TopologyError(f"step '{step}': schema must be a pyarrow.Schema or 'infer'")
    if value.name != "json" and not _is_avro(value):
        raise TopologyError(
            f"step '{step}': a schema needs JSON or Avro values (AvroSerde), not {value.name}"
        )
    return schema


def _is_avro(value: Serde) -> bool:
    if not str(getattr(value, "name", "")).startswith("avro"):
        return False  # (by name first: importing the serdes pulls fastavro)
    from streams.core.serdes.avro import AvroSerde

    return isinstance(value, AvroSerde)


def _slug(topic: str) -> str:
    s = re.sub(r"[^a-z0-9-]+", "-", topic.lower()).strip("-")
    return s or "topic"


__all__ = ["Topology"]
