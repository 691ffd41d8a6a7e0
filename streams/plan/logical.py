"""``LogicalPlan``: an application's dataflow as plain data, what the compiler reads.

The DSL (:mod:`streams.dsl`) builds it through a :class:`~streams.plan.builder.PlanBuilder`;
the compiler (:mod:`streams.compiler.compile`) turns it into a physical plan. It holds the
nodes in the order they were added (a topological order), the execution mode and the error
policies, and answers the graph questions both sides ask (children, upstream sources, whether
the key may have changed, which store backs a table).

>>> from streams.plan import nodes as plan
>>> src = plan.Source(step="s", parents=(), topic="in")
>>> kb = plan.KeyBy(step="k", parents=("s",), key=plan.as_fn("k", "key", "user"))
>>> lp = LogicalPlan("app", (src, kb))
>>> lp.children("s"), lp.key_changed("k"), [s.topic for s in lp.upstream_sources("k")]
(['k'], True, ['in'])
>>> lp.schema_of("k") is None  # (a source without a schema: its fields are not known)
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from streams.core.errors import TopologyError
from streams.core.policies import ErrorPolicyName, Execution
from streams.plan import nodes as plan
from streams.plan.schema import Fields, Schemas


class PlanGraph:
    """Graph queries over ``_by_step`` (step -> node) and ``_kids`` (step -> child steps)."""

    app_id: str
    _by_step: Mapping[str, plan.Node]
    _kids: Mapping[str, Sequence[str]]
    _schemas: Schemas

    @property
    def schemas(self) -> Schemas:
        """The fields and record classes of every step's values."""
        return self._schemas

    def schema_of(self, step: str) -> Fields:
        """The fields of the values ``step`` emits, in order (None: not known); see
        :mod:`streams.plan.schema`."""
        self.node(step)
        return self._schemas.fields_out(step)

    def node(self, step: str) -> plan.Node:
        try:
            return self._by_step[step]
        except KeyError:
            raise TopologyError(f"unknown step '{step}' in topology '{self.app_id}'") from None

    def has_step(self, step: str) -> bool:
        return step in self._by_step

    def children(self, step: str) -> list[str]:
        return list(self._kids[step])

    def upstream_sources(self, step: str) -> list[plan.Source]:
        """The sources whose records reach ``step`` (directly or through any step)."""
        seen: set[str] = set()
        out: list[plan.Source] = []
        todo = [step]
        while todo:
            s = todo.pop()
            if s in seen:
                continue
            seen.add(s)
            n = self._by_step[s]
            if isinstance(n, plan.Source):
                out.append(n)
            todo.extend(n.parents)
        return out

    def key_changed(self, step: str) -> bool:
        """Whether records at ``step`` may carry a key other than their partition's."""
        n = self._by_step[step]
        if isinstance(n, plan.Source | plan.Repartition):
            return False
        if n.changes_key:
            return True
        return any(self.key_changed(p) for p in n.parents)

    def internal_topic(self, step: str, kind: str) -> str:
        """The name of a topic owned by this application: ``{app_id}-{step}-{kind}``."""
        return f"{self.app_id}-{step}-{kind}"

    def table_topic(self, step: str) -> str:
        """The input topic a table's partitions follow (its source, or what feeds its store)."""
        for src in self.upstream_sources(step):
            return src.topic
        raise TopologyError(f"table '{step}' has no source topic")

    def table_store(self, step: str) -> tuple[str, list[Any]]:
        """The store behind a table step and the derivations to apply on read, innermost last."""
        chain: list[Any] = []
        node = self.node(step)
        while isinstance(node, plan.TableFilter | plan.TableMapValues):
            chain.append(node)
            node = self.node(node.parents[0])
        if not isinstance(node, plan.ToTable | plan.Aggregate):
            raise TopologyError(
                f"table '{step}' has no store to look up (it is derived from '{node.step}'); "
                f'materialize it first: .changes().to_table("id")'
            )
        return node.store.name, chain

    def store_owner(self, store: str) -> plan.Node:
        """The node that owns store ``store``."""
        for n in self._by_step.values():
            if any(s.name == store for s in n.stores):
                return n
        raise TopologyError(f"no step owns store '{store}'")


@dataclass(frozen=True)
class LogicalPlan(PlanGraph):
    """The nodes in the order they were added, and how they run (see the module docstring)."""

    app_id: str
    nodes: tuple[plan.Node, ...]
    execution: Execution = "auto"
    #: the default policy for user functions failing on a record
    on_error: ErrorPolicyName = "fail"
    #: ``stream.on_error(...)`` overrides, per step
    step_policies: Mapping[str, ErrorPolicyName] = field(default_factory=dict)
    #: the dead-letter topics' partition count and ``retention.ms`` (None: the broker's)
    dead_letter_partitions: int = 1
    dead_letter_retention_ms: int | None = None
    _by_step: Mapping[str, plan.Node] = field(init=False, repr=False, compare=False)
    _kids: Mapping[str, Sequence[str]] = field(init=False, repr=False, compare=False)
    _schemas: Schemas = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_step = {n.step: n for n in self.nodes}
        kids: dict[str, list[str]] = {n.step: [] for n in self.nodes}
        for n in self.nodes:
            for p in n.parents:
                kids[p].append(n.step)
        object.__setattr__(self, "_by_step", by_step)
        object.__setattr__(self, "_kids", {s: tuple(c) for s, c in kids.items()})
        object.__setattr__(self, "_schemas", Schemas.of(self.nodes))

    def policy_for(self, step: str | None) -> ErrorPolicyName:
        """The error policy of ``step``: its own (``stream.on_error``) or the plan's."""
        return self.step_policies.get(step or "", self.on_error)

    @property
    def dead_letters(self) -> bool:
        """Whether any step sends failed records to ``{app_id}-dlq``."""
        return "dead_letter" in (self.on_error, *self.step_policies.values())


__all__ = ["LogicalPlan", "PlanGraph"]
