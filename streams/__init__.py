"""streams-dsl: stream processing for Python, compiled to fused micro-batch tasks.

>>> import streams as st
>>> topo = st.Topology("hello")
>>> topo.source("in").filter(st.col("n") > 0).to("out")
>>> d = st.testing.TopologyTestDriver(topo)
>>> d.pipe("in", {"n": 3})
>>> d.read_values("out")
[{'n': 3}]
"""

# The facade: the top layer, the one place users import from. Its names load on first use
# (PEP 562) because the bottom layer lives in this package too (streams.core: errors, serdes,
# records), and Python runs this file before any submodule: state/ and operators/ import
# streams.core, and an eager import of the DSL here would run the whole stack above them
# first (an import cycle through this file). Lazy names keep `import state` light and make
# `import streams` cost nothing until a name is used.
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "BrokerError": "streams.core.errors",
    "Config": "streams.runtime.config",
    "EmbeddedBroker": "streams.runtime.embedded",
    "Expr": "streams.plan.expr",
    "ProcessingError": "streams.core.errors",
    "ProcessorContext": "operators.context",
    "SerializationError": "streams.core.errors",
    "StateError": "streams.core.errors",
    "Stream": "streams.dsl.stream",
    "StreamsError": "streams.core.errors",
    "TopicPartition": "streams.core.records",
    "Topology": "streams.dsl.topology",
    "TopologyError": "streams.core.errors",
    "TopologyTestDriver": "streams.testing",
    "Worker": "streams.runtime.worker",
    "col": "streams.plan.expr",
    "key": "streams.plan.expr",
    "lit": "streams.plan.expr",
    "run_bounded": "streams.runtime.bounded",
    "value": "streams.plan.expr",
    "when": "streams.plan.expr",
}
_MODULES = {
    "agg": "streams.plan.agg",
    "connectors": "streams.connectors",
    "errors": "streams.core.errors",
    "serde": "streams.core.serde",
    "serdes": "streams.core.serdes",
    "testing": "streams.testing",
    "windows": "streams.plan.windows",
}

__all__ = [
    "BrokerError",
    "Config",
    "EmbeddedBroker",
    "Expr",
    "ProcessingError",
    "ProcessorContext",
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
    "connectors",
    "errors",
    "key",
    "lit",
    "run_bounded",
    "serde",
    "serdes",
    "testing",
    "value",
    "when",
    "windows",
]


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(_MODULES[name])
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'streams' has no attribute {name!r}")
    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from operators.context import ProcessorContext
    from streams import connectors, testing
    from streams.core import errors, serde, serdes
    from streams.core.errors import (
        BrokerError,
        ProcessingError,
        SerializationError,
        StateError,
        StreamsError,
        TopologyError,
    )
    from streams.core.records import TopicPartition
    from streams.dsl.stream import Stream
    from streams.dsl.topology import Topology
    from streams.plan import agg, windows
    from streams.plan.expr import Expr, col, key, lit, value, when
    from streams.runtime.bounded import run_bounded
    from streams.runtime.config import Config
    from streams.runtime.embedded import EmbeddedBroker
    from streams.runtime.worker import Worker
    from streams.testing import TopologyTestDriver
