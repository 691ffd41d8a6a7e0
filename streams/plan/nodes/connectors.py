"""Nodes of user connectors: a sink or a source written on the connector API
(:mod:`operators.connectors.api`). The plan holds the connector spec as an opaque object (it
does no I/O until a task opens it) and the store it commits its state in.

>>> n = SinkConnector(step="out", parents=("in",), sink=object(), store=StoreSpec("out"))
>>> n.kind, [s.name for s in n.stores]
('connector_sink', ['out'])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from streams.plan.nodes.base import Node, StoreSpec
from streams.plan.nodes.stream import Source


@dataclass(frozen=True, kw_only=True)
class SinkConnector(Node):
    """Writes records through a connector ``sink`` (an ``operators.connectors.api.Sink``) that
    takes part in the task's commit; ``store`` keeps its commit state."""

    sink: Any
    store: StoreSpec
    kind: ClassVar[str] = "connector_sink"

    def reads(self) -> frozenset[str]:
        reads = getattr(self.sink, "reads", None)
        return frozenset(reads()) if callable(reads) else frozenset()

    @property
    def stores(self) -> tuple[StoreSpec, ...]:
        return (self.store,)

    def detail(self) -> str:
        return f"{self.sink.describe()}; store={self.store.name}"


@dataclass(frozen=True, kw_only=True)
class SourceConnector(Source):
    """Records read by a connector ``source`` (an ``operators.connectors.api.Source``) rather
    than from a Kafka topic. ``topic`` is the source's anchor: a one-partition topic that
    stays empty and only gives the source one owner in the consumer group. ``store`` keeps
    the source's position, committed with the task."""

    connector: Any
    store: StoreSpec
    kind: ClassVar[str] = "connector_source"

    @property
    def stores(self) -> tuple[StoreSpec, ...]:
        return (self.store,)

    def detail(self) -> str:
        return f"{self.connector.describe()}; store={self.store.name}"


__all__ = ["SinkConnector", "SourceConnector"]
