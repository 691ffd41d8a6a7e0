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
from streams.core.typed_serde import serde_for
from streams.dsl.stream import Stream
from streams.dsl.table import GlobalTable, Table
from streams.plan import nodes as plan
from streams.plan.builder import PlanBuilder
from streams.plan.logical import LogicalPlan
from streams.plan.windows import to_ms

if TYPE_CHECKING:
    from streams.compiler.compile import PhysicalPlan

_APP_ID = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$")
_TOPIC = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")


class Topology:
    """A named dataflow. ``app_id`` names the consumer group, state stores and internal topics.

    Serdes default to ``key=STR`` and ``value=JSON`` for sources and sinks.
    ``dead_letter_partitions`` and ``dead_letter_retention_ms`` shape the dead-letter topics the
    application creates (``{app_id}-dlq`` and sources' ``dead_letter_topic``; retention
    ``None``: the broker's default, ``-1``: forever).
    """

    def __init__(
        self,
        app_id: str,
        *,
        default_key: Serde = STR,
        default_value: Serde = JSON,
        on_error: ErrorPolicyName = "fail",
        execution: Execution = "auto",
        dead_letter_partitions: int = 1,
        dead_letter_retention_ms: int | None = None,
    ) -> None:
        if not isinstance(app_id, str) or not _APP_ID.match(app_id):
            raise TopologyError(
                f"application id {app_id!r} is not valid: use letters, digits, '.', '_' and '-'"
            )
        self.app_id = app_id
        check_error_policy(on_error)
        #: builds the logical plan; the DSL's handles add their steps through it
        self.builder = PlanBuilder(app_id, on_error=on_error)
        _check_dead_letters(dead_letter_partitions, dead_letter_retention_ms)
        self.builder.dead_letter_partitions = dead_letter_partitions
        self.builder.dead_letter_retention_ms = dead_letter_retention_ms
        self.default_key = default_key
        self.default_value = default_value
        self._compiled: dict[bool, tuple[int, PhysicalPlan]] = {}
        self.execution = execution

    @property
    def on_error(self) -> ErrorPolicyName:
        """Policy for a user function (map, filter, ...) failing on a record; dead letters go
        to ``{app_id}-dlq``."""
        return self.builder.on_error

    @property
    def execution(self) -> Execution:
        """How fused chains of expression steps run: ``"row"`` (generated Python over row
        batches), ``"columnar"`` (on Arrow, converting row batches at the chain's entry) or
        ``"auto"`` (on Arrow when the batch arrives columnar: a source with a ``schema``)."""
        return self.builder.execution

    @execution.setter
    def execution(self, mode: Execution) -> None:
        check_execution(mode)
        self.builder.execution = mode

    # -- building -------------------------------------------------------------------------
    def source(
        self,
        topic: str,
        *,
        key: Serde | type | None = None,
        value: Serde | type | None = None,
        timestamp: Any = None,
        max_out_of_orderness: int | timedelta = 0,
        idle_timeout: int | timedelta | None = None,
        on_error: ErrorPolicyName = "fail",
        dead_letter_topic: str | None = None,
        name: str | None = None,
        schema: Any = None,
    ) -> Stream:
        """A stream read from ``topic``.

        ``key``/``value``: a serde, or a type the serde follows from: ``str``, ``int``,
        ``bytes``, or a record class (``msgspec.Struct``, dataclass, ``faust.Record``, pydantic
        model) whose values decode straight into it from JSON; expressions (``st.col``) and
        aggregations read its fields, functions receive its objects, its fields are checked
        at build time and, when every field has an Arrow type, chains of expressions run on
        Arrow (``execution="auto"``). ``timestamp`` gives each record its event time in epoch
        milliseconds: ``None`` (the Kafka record's timestamp), a field name, a column
        expression or ``fn(value)``.
        ``schema`` (a ``pyarrow.Schema``, or ``"infer"``: from the first batch) declares the
        fields of JSON values: a batch decodes straight into Arrow (records carry every field
        of the schema, null when absent; other fields are dropped) and columnar chains run on it.
        Avro values (``AvroSerde``) take a schema too; ``"infer"`` maps their Avro schema
        (:mod:`operators.arrow_avro`).
        """
        if not isinstance(topic, str) or not _TOPIC.match(topic):
            raise TopologyError(f"source topic {topic!r} is not a valid Kafka topic name")
        key, value = _serdes(key, value, f"source '{topic}'")
        for n in self.builder.nodes:
            if isinstance(n, plan.Source) and n.topic == topic:
                raise TopologyError(
                    f"topic '{topic}' is already read by step '{n.step}': reuse that stream "
                    "(a topic has one source per topology)"
                )
        step = self.builder.step_name(
            "source", name if name is not None else f"source-{_slug(topic)}"
        )
        ts = plan.as_fn(step, "timestamp", timestamp) if timestamp is not None else None
        check_error_policy(on_error, where=f"step '{step}'")
        ooo = to_ms(max_out_of_orderness, f"step '{step}': max_out_of_orderness")
        idle = None if idle_timeout is None else to_ms(idle_timeout, f"step '{step}': idle_timeout")
        if ooo < 0 or (idle is not None and idle <= 0):
            raise TopologyError(
                f"step '{step}': max_out_of_orderness must be >= 0 and idle_timeout > 0"
            )
        self.builder.add(
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
        key: Serde | type | None = None,
        value: Serde | type | None = None,
        name: str | None = None,
    ) -> Table:
        """A table read from ``topic`` (compacted: the latest value per key; ``None`` deletes).

        The topic itself is the store's changelog: restoring reads it, nothing is copied.
        """
        slug = _slug(topic)
        key, value = _serdes(key, value, f"table '{topic}'")
        src = self.source(topic, key=key, value=value, name=f"source-{slug}")
        step = self.builder.step_name("table", name if name is not None else f"table-{slug}")
        store = plan.StoreSpec(
            step,
            key_serde=key or self.default_key,
            value_serde=value or self.default_value,
            source_topic=topic,
        )
        self.builder.claim_store(step, step)
        self.builder.add(plan.ToTable(step=step, parents=(src.step,), store=store))
        return Table(self, step)

    def global_table(
        self,
        topic: str,
        *,
        key: Serde | type | None = None,
        value: Serde | type | None = None,
        name: str | None = None,
    ) -> GlobalTable:
        """A table every worker holds entirely (all partitions of ``topic``)."""
        if not isinstance(topic, str) or not _TOPIC.match(topic):
            raise TopologyError(f"global table topic {topic!r} is not a valid Kafka topic name")
        key, value = _serdes(key, value, f"global table '{topic}'")
        step = self.builder.step_name(
            "global", name if name is not None else f"global-{_slug(topic)}"
        )
        self.builder.add(
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
        if not self.builder.has_step(step):
            raise TopologyError(f"unknown step '{step}' in topology '{self.app_id}'")
        return Stream(self, step)

    def internal_topic(self, step: str, kind: str) -> str:
        """The name of a topic owned by this application: ``{app_id}-{step}-{kind}``."""
        return self.builder.internal_topic(step, kind)

    # -- reading the plan ---------------------------------------------------------------
    @property
    def nodes(self) -> list[plan.Node]:
        """The logical plan's nodes in the order they were added (a topological order)."""
        return self.builder.nodes

    def policy_for(self, step: str | None) -> str:
        """The error policy of ``step``: its own (``stream.on_error``) or the topology's."""
        return self.builder.policy_for(step)

    def node(self, step: str) -> plan.Node:
        return self.builder.node(step)

    def children(self, step: str) -> list[str]:
        return self.builder.children(step)

    def upstream_sources(self, step: str) -> list[plan.Source]:
        return self.builder.upstream_sources(step)

    def key_changed(self, step: str) -> bool:
        """Whether records at ``step`` may carry a key other than their partition's."""
        return self.builder.key_changed(step)

    def logical_plan(self) -> LogicalPlan:
        """The dataflow as plain data (what the compiler reads)."""
        return self.builder.build()

    # -- compiling ------------------------------------------------------------------------
    def compile(self, *, fuse: bool = True) -> PhysicalPlan:
        """Validate and compile to the physical plan (cached until the topology changes)."""
        version = self.builder.version
        cached = self._compiled.get(fuse)
        if cached is None or cached[0] != version:
            from streams.compiler.compile import compile_plan

            cached = self._compiled[fuse] = (version, compile_plan(self.logical_plan(), fuse=fuse))
        return cached[1]

    def describe(self, format: Literal["text", "mermaid"] = "text") -> str:
        """The compiled topology: sub-topologies, fused chains, stores and internal topics."""
        from streams.compiler.describe import describe_mermaid, describe_text

        compiled = self.compile()
        return describe_text(compiled) if format == "text" else describe_mermaid(compiled)

    def __repr__(self) -> str:
        return f"Topology({self.app_id!r}, steps={len(self.builder.nodes)})"


def _serdes(key: Any, value: Any, where: str) -> tuple[Serde | None, Serde | None]:
    """``key=``/``value=`` as serdes (a type gives its serde: :func:`serde_for`)."""
    k = None if key is None else serde_for(key, where=f"{where}: key")
    v = None if value is None else serde_for(value, where=f"{where}: value")
    return k, v


def _check_dead_letters(partitions: Any, retention_ms: Any) -> None:
    if type(partitions) is not int or partitions < 1:
        raise TopologyError(f"dead_letter_partitions must be an int >= 1, got {partitions!r}")
    if retention_ms is not None and (
        type(retention_ms) is not int or (retention_ms < 1 and retention_ms != -1)
    ):
        raise TopologyError(
            f"dead_letter_retention_ms must be an int >= 1, -1 (forever) or None, "
            f"got {retention_ms!r}"
        )


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
