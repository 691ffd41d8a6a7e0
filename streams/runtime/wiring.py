"""Wiring a task: one processor per segment of its sub-topology, children before parents.

:class:`Wiring` is the :class:`~operators.registry.BuildContext` the operator registry's
builders take: the task's stores, error policies, table getters, collector and partition. A
fused chain becomes a :class:`~operators.fused.ChainProcessor` (wrapped in a columnar one when
the compiler chose Arrow); every other segment is built by its node's registry entry.

>>> import streams as st
>>> from streams.runtime.task import BrokerCollector
>>> from streams.runtime.embedded import EmbeddedBroker
>>> t = st.Topology("app"); t.source("in").map_values(st.col("n") * 2).to("out")
>>> p = t.compile()
>>> w = Wiring(p, p.subtopologies[0], 0, BrokerCollector(EmbeddedBroker()), None)
>>> sorted(type(x).__name__ for x in w.procs.values())
['ChainProcessor', 'SinkProcessor']
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from operators import registry
from operators.aggregate import AggregateProcessor
from operators.base import Collector, Processor
from operators.columnar import ColumnarChainProcessor
from operators.drops import Drops
from operators.errors import ErrorPolicy, Reject
from operators.event_time import EventTime
from operators.fused import ChainProcessor
from operators.parquet_sink import ParquetSinkProcessor
from operators.table import make_getter
from state.task_state import TaskStores
from streams.compiler.compile import PhysicalPlan, SubTopology
from streams.plan import nodes as plan


class Wiring:
    """Builds the processors of ``sub`` for ``partition`` (see the module docstring)."""

    def __init__(
        self,
        physical: PhysicalPlan,
        sub: SubTopology,
        partition: int,
        collector: Collector,
        stores: TaskStores | None,
        *,
        clock: Callable[[], int] | None = None,
        global_stores: Mapping[str, Any] | None = None,
        reject: Reject | None = None,
        drops: Drops | None = None,
        event_time: EventTime | None = None,
    ) -> None:
        self.partition = partition
        self.drops = drops if drops is not None else Drops()
        self.event_time = event_time if event_time is not None else EventTime()
        self.execution = physical.execution
        self.collector = collector
        self.clock: Callable[[], int] = clock or (lambda: int(time.time() * 1000))
        self.task_count = max((collector.partitions(t) for t in sub.inputs), default=1)
        self._physical = physical
        self._stores = stores
        self._global_stores = global_stores or {}
        self._reject = reject
        self._nodes: dict[str, plan.Node] = {}
        self._policy_names: dict[str, str] = {}
        self._modes: dict[str, str] = {}
        for seg in sub.segments.values():
            self._nodes.update(zip(seg.steps, seg.nodes, strict=True))
            self._policy_names.update(seg.policies)
            self._modes.update((s, seg.mode) for s in seg.steps)
        #: the error policy of each step that asked for one (made once per step)
        self.error_policies: dict[str, ErrorPolicy] = {}
        #: processors that react to the watermark, in reverse topological order
        self.timed: list[Any] = []
        self.file_sinks: list[ParquetSinkProcessor] = []
        self.procs: dict[str, Processor] = {}
        for seg in reversed(list(sub.segments.values())):
            last = seg.steps[-1]
            exits = [[self.wire(c, last) for c in e] for e in seg.exits]
            if seg.kind == "chain":
                assert seg.chain is not None
                cp = ChainProcessor(seg.chain, exits, policy=self.policy, drops=self.drops)
                self.procs[seg.id] = cp
                if seg.columnar is not None:
                    always = seg.execution == "columnar" or seg.convert_rows
                    self.procs[seg.id] = ColumnarChainProcessor(cp, seg.columnar, always=always)
            else:
                self.procs[seg.id] = registry.build(seg.nodes[0], exits, self)

    def wire(self, child: str, parent_step: str) -> Processor:
        """The processor (or, for a two-input step, the port) a parent feeds."""
        p = self.procs[child]
        node = self._nodes[child]
        if registry.spec_for(node).binary:
            port: Processor = getattr(p, "left" if node.parents[0] == parent_step else "right")
            return port
        return p

    # -- BuildContext -----------------------------------------------------------------------
    @property
    def stores(self) -> TaskStores:
        if self._stores is None:  # (a process step without stores)
            self._stores = TaskStores([], self.partition)
        return self._stores

    def policy(self, step: str | None) -> ErrorPolicy:
        p = self.error_policies.get(step or "")
        if p is None:
            name = self._policy_names.get(step or "", self._physical.on_error)
            p = self.error_policies[step or ""] = ErrorPolicy(
                step or "", name, self._reject, self.drops
            )
        return p

    def getter(self, table_step: str) -> Callable[[Any], Any]:
        logical = self._physical.logical
        tstore, chain = logical.table_store(table_step)
        owner = logical.store_owner(tstore)
        present = AggregateProcessor.presenter(owner) if isinstance(owner, plan.Aggregate) else None
        return make_getter(self.stores.kv(tstore), chain, present)

    def global_store(self, step: str) -> Any:
        return self._global_stores.get(step)

    def arrow_out(self, step: str) -> bool:
        return self._modes.get(step) == "columnar"

    def timed_topic(self, topic: str) -> bool:
        return topic in self._physical.timed_topics

    def on_watermark(self, proc: Any) -> None:
        self.timed.append(proc)

    def file_sink(self, proc: ParquetSinkProcessor) -> None:
        self.file_sinks.append(proc)


__all__ = ["Wiring"]
