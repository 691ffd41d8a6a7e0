"""streams-dsl: stream processing for Python, compiled to fused micro-batch tasks.

>>> import streams as st
>>> topo = st.Topology("hello")
>>> topo.source("in").filter(st.col("n") > 0).to("out")
>>> d = st.testing.TopologyTestDriver(topo)
>>> d.pipe("in", {"n": 3})
>>> d.read_values("out")
[{'n': 3}]
"""

# The public names load lazily (PEP 562): lower layers (state/, operators/) import
# streams.errors and streams.serde, and importing those must not drag in the DSL, the runtime
# and the test driver above them (that would be an import cycle through this file).
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "BrokerError": "streams.errors",
    "Config": "streams.config",
    "EmbeddedBroker": "streams.runtime.embedded",
    "Expr": "streams.expr",
    "ProcessingError": "streams.errors",
    "SerializationError": "streams.errors",
    "StateError": "streams.errors",
    "Stream": "streams.stream",
    "StreamsError": "streams.errors",
    "TopicPartition": "streams.runtime.broker",
    "Topology": "streams.topology",
    "TopologyError": "streams.errors",
    "TopologyTestDriver": "streams.testing",
    "Worker": "streams.runtime.worker",
    "col": "streams.expr",
    "key": "streams.expr",
    "lit": "streams.expr",
    "run_bounded": "streams.bounded",
    "value": "streams.expr",
    "when": "streams.expr",
}
_MODULES = {"agg", "errors", "serde", "testing"}

__all__ = [
    "BrokerError",
    "Config",
    "EmbeddedBroker",
    "Expr",
    "ProcessingError",
    "SerializationError",
    "StateError",
    "Stream",
    "StreamsError",
    "TopicPartition",
    "Topology",
    "TopologyError",
    "TopologyTestDriver",
    "Worker",
    "agg",
    "col",
    "errors",
    "key",
    "lit",
    "run_bounded",
    "serde",
    "testing",
    "value",
    "when",
]


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(f"streams.{name}")
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'streams' has no attribute {name!r}")
    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from streams import agg, errors, serde, testing
    from streams.bounded import run_bounded
    from streams.config import Config
    from streams.errors import (
        BrokerError,
        ProcessingError,
        SerializationError,
        StateError,
        StreamsError,
        TopologyError,
    )
    from streams.expr import Expr, col, key, lit, value, when
    from streams.runtime.broker import TopicPartition
    from streams.runtime.embedded import EmbeddedBroker
    from streams.runtime.worker import Worker
    from streams.stream import Stream
    from streams.testing import TopologyTestDriver
    from streams.topology import Topology
