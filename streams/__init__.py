"""streams-dsl: stream processing for Python, compiled to fused micro-batch tasks.

>>> import streams as st
>>> topo = st.Topology("hello")
>>> topo.source("in").filter(st.col("n") > 0).to("out")
>>> d = st.testing.TopologyTestDriver(topo)
>>> d.pipe("in", {"n": 3})
>>> d.read_values("out")
[{'n': 3}]
"""

from streams import errors, serde, testing
from streams.config import Config
from streams.errors import (
    BrokerError,
    ProcessingError,
    SerializationError,
    StateError,
    StreamsError,
    TopologyError,
)
from streams.expr import Expr, col, key, lit, value
from streams.runtime.broker import TopicPartition
from streams.runtime.embedded import EmbeddedBroker
from streams.runtime.worker import Worker
from streams.stream import Stream
from streams.testing import TopologyTestDriver
from streams.topology import Topology

__version__ = "0.1.0"

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
    "col",
    "errors",
    "key",
    "lit",
    "serde",
    "testing",
    "value",
]
