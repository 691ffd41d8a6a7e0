"""``PlanBuilder``: grows a :class:`~streams.plan.logical.LogicalPlan` one node at a time.

The DSL (``Topology``, ``Stream``, ``Table``, ``WindowedStream``) is a facade over it, as
Kafka Streams' ``StreamsBuilder`` is over its ``InternalStreamsBuilder``: the builder names
steps, checks that ids are unique, that parents exist and can feed the new node, that every
field a node reads is in its input's schema where that is known (:mod:`streams.plan.schema`),
that a store has one owner and that no sink feeds its own source, and records per-step error
policies.
:meth:`PlanBuilder.build` snapshots the result as plain data.

>>> from streams.plan import nodes as plan
>>> b = PlanBuilder("app")
>>> b.add(plan.Source(step="source-in", parents=(), topic="in"))
'source-in'
>>> step = b.step_name("filter", None)
>>> b.add(plan.Filter(step=step, parents=("source-in",), predicate=plan.as_fn(step, "p", "ok")))
'filter-1'
>>> [n.step for n in b.build().nodes]
['source-in', 'filter-1']
"""

from __future__ import annotations

from streams.core.errors import TopologyError
from streams.core.policies import ErrorPolicyName, Execution
from streams.plan import nodes as plan
from streams.plan.logical import LogicalPlan, PlanGraph
from streams.plan.schema import Schemas, check_reads


class PlanBuilder(PlanGraph):
    """The mutable side of a logical plan; ``version`` changes with every change to it."""

    def __init__(
        self, app_id: str, *, on_error: ErrorPolicyName = "fail", execution: Execution = "auto"
    ) -> None:
        self.app_id = app_id
        self.on_error: ErrorPolicyName = on_error
        self._execution: Execution = execution
        self._by_step: dict[str, plan.Node] = {}
        self._kids: dict[str, list[str]] = {}
        self._policies: dict[str, ErrorPolicyName] = {}
        self._stores: dict[str, str] = {}  # store name -> owning step
        self._schemas = Schemas()
        self._counter = 0
        self.version = 0
        self._built: LogicalPlan | None = None
        #: the dead-letter topics' partitions and retention (set by the Topology)
        self.dead_letter_partitions = 1
        self.dead_letter_retention_ms: int | None = None

    def _changed(self) -> None:
        self.version += 1
        self._built = None

    @property
    def execution(self) -> Execution:
        return self._execution

    @execution.setter
    def execution(self, mode: Execution) -> None:
        self._execution = mode
        self._changed()

    @property
    def nodes(self) -> list[plan.Node]:
        """The nodes in the order they were added (a topological order)."""
        return list(self._by_step.values())

    # -- naming ---------------------------------------------------------------------------
    def auto_id(self, kind: str) -> str:
        """A fresh step id ``{kind}-{n}`` (n counts every auto id of this plan)."""
        self._counter += 1
        return f"{kind}-{self._counter}"

    def step_name(self, kind: str, name: str | None) -> str:
        """``name`` (checked: a valid, unused step id), or an auto id of ``kind``."""
        if name is None:
            name = self.auto_id(kind)
        plan.check_step_id(name)
        self.check_new_step(name)
        return name

    def check_new_step(self, name: str) -> None:
        if name in self._by_step:
            raise TopologyError(f"duplicate step id '{name}': step ids must be unique")

    # -- growing ----------------------------------------------------------------------------
    def claim_store(self, store: str, step: str) -> None:
        """Make ``step`` the owner of ``store`` (a store has one owner)."""
        owner = self._stores.get(store)
        if owner is not None and owner != step:
            raise TopologyError(
                f"step '{step}': store '{store}' already belongs to step '{owner}' "
                "(a store has one owner; its name is also its changelog topic's)"
            )
        self._stores[store] = step

    def add(self, node: plan.Node) -> str:
        """Append ``node`` below its parents; returns its step id."""
        self.check_new_step(node.step)
        for p in node.parents:
            if p not in self._by_step:
                raise TopologyError(f"step '{node.step}': unknown parent step '{p}'")
            if isinstance(self._by_step[p], plan.Sink):
                raise TopologyError(f"step '{node.step}': step '{p}' is a sink and has no output")
            if isinstance(self._by_step[p], plan.Branch) and not isinstance(
                node, plan.BranchOutput
            ):
                raise TopologyError(f"step '{node.step}': use the streams returned by branch '{p}'")
        if isinstance(node, plan.Sink):
            self._check_no_cycle(node)
        self._schemas.add(node)  # (raises if it reads a field its input lacks)
        self._by_step[node.step] = node
        self._kids[node.step] = []
        for p in node.parents:
            self._kids[p].append(node.step)
        self._changed()
        return node.step

    def replace(self, node: plan.Node) -> None:
        """Swap the step of ``node``'s id for ``node``: same kind, same parents (tools that
        rewire a built topology: a benchmark's blackhole sink, another topic name).

        >>> from streams.core.serde import STR
        >>> b = PlanBuilder("app")
        >>> _ = b.add(plan.Source(step="in", parents=(), topic="a"))
        >>> b.replace(plan.Source(step="in", parents=(), topic="b", value_serde=STR))
        >>> b.build().node("in").topic
        'b'
        """
        old = self._by_step.get(node.step)
        if old is None:
            raise TopologyError(f"step '{node.step}' does not exist: nothing to replace")
        if type(old) is not type(node) or old.parents != node.parents:
            raise TopologyError(
                f"step '{node.step}': a replacement keeps the step's kind ({old.kind}) "
                f"and parents {old.parents}"
            )
        if isinstance(node, plan.Sink):
            self._check_no_cycle(node)
        nodes = [node if n.step == node.step else n for n in self._by_step.values()]
        self._schemas = Schemas.of(nodes)  # (a source's new serde may change fields below it)
        self._by_step[node.step] = node
        self._changed()

    def _check_no_cycle(self, sink: plan.Sink) -> None:
        for src in self.upstream_sources(sink.parents[0]):
            if src.topic == sink.topic:
                raise TopologyError(
                    f"step '{sink.step}': writing to '{sink.topic}', which step '{src.step}' "
                    "reads upstream of it, would loop forever"
                )

    @property
    def schemas(self) -> Schemas:
        """The fields and record classes of the steps added so far."""
        return self._schemas

    def check_reads(self, step: str, parent: str, reads: frozenset[str]) -> None:
        """Raise now if step ``step``, to be added below ``parent``, reads a field ``parent``'s
        values lack (before a step that adds others first, e.g. a repartition, changes the
        plan)."""
        check_reads(step, reads, self._schemas.fields_out(parent))

    # -- error policies ---------------------------------------------------------------------
    def set_policy(self, step: str, policy: ErrorPolicyName) -> None:
        """``step``'s own error policy, over the plan's ``on_error``."""
        self._policies[step] = policy
        self._changed()

    def policy_for(self, step: str | None) -> ErrorPolicyName:
        return self._policies.get(step or "", self.on_error)

    # -- the result -------------------------------------------------------------------------
    def build(self) -> LogicalPlan:
        """The plan as it is now (the same object until the next change)."""
        if self._built is None:
            self._built = LogicalPlan(
                self.app_id,
                tuple(self._by_step.values()),
                self._execution,
                self.on_error,
                dict(self._policies),
                dead_letter_partitions=self.dead_letter_partitions,
                dead_letter_retention_ms=self.dead_letter_retention_ms,
            )
        return self._built


__all__ = ["PlanBuilder"]
