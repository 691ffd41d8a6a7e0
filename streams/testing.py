"""``TopologyTestDriver``: run a topology synchronously, deterministically, with no broker.

Records you pipe are serialized with the source's serdes, partitioned like Kafka would, and
processed by the same tasks a worker runs (repartition topics included) before ``pipe``
returns. Outputs are read back deserialized with the sink's serdes.

>>> import streams as st
>>> topo = st.Topology("t")
>>> topo.source("in").filter(st.col("n") > 1).to("out")
>>> d = TopologyTestDriver(topo)
>>> d.pipe("in", {"n": 1}, key="a"); d.pipe("in", {"n": 2}, key="b")
>>> [(r.key, r.value) for r in d.read("out")]
[('b', {'n': 2})]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from streams.compile import PhysicalPlan
from streams.errors import TopologyError
from streams.partitioner import Partitioner
from streams.runtime.broker import TopicPartition
from streams.runtime.embedded import EmbeddedBroker
from streams.runtime.task import BrokerCollector, Task, TaskId
from streams.serde import Serde
from streams.topology import Topology

Headers = Sequence[tuple[str, bytes]]


@dataclass(frozen=True)
class Record:
    """An output record as a test reads it."""

    key: Any
    value: Any
    timestamp: int
    headers: Headers = ()
    partition: int = 0
    offset: int = 0


class TopologyTestDriver:
    """Pipe records in, read records out; ``partitions`` partitions per topic (default 1)."""

    def __init__(
        self, topology: Topology, *, partitions: int = 1, start_time_ms: int = 0, fuse: bool = True
    ) -> None:
        if partitions < 1:
            raise ValueError("partitions must be >= 1")
        self.topology = topology
        self.plan: PhysicalPlan = topology.compile(fuse=fuse)
        self.partitions = partitions
        self.broker = EmbeddedBroker(default_partitions=partitions)
        self.wall_clock_ms = start_time_ms
        self._partitioner = Partitioner()
        self._read_pos: dict[TopicPartition, int] = {}
        self._collector = BrokerCollector(self.broker)
        for topic in (*self.plan.input_topics, *self.plan.sink_topics):
            self.broker.create_topic(topic, partitions)
        self.tasks: dict[TaskId, Task] = {}
        self._start_tasks()

    def _start_tasks(self) -> None:
        for sub in self.plan.subtopologies:
            for p in range(self.partitions):
                self.tasks[TaskId(sub.id, p)] = Task(self.plan, sub, p, self._collector)
        self._positions = {
            TopicPartition(t, p): 0 for t in self.plan.input_topics for p in range(self.partitions)
        }

    # -- input ---------------------------------------------------------------------------------
    def _source_serdes(self, topic: str) -> tuple[Serde, Serde]:
        for sub in self.plan.subtopologies:
            inp = sub.inputs.get(topic)
            if inp is not None and not inp.internal:
                return inp.key_serde, inp.value_serde
        raise TopologyError(
            f"topic '{topic}' is not a source of topology '{self.plan.app_id}' "
            f"(sources: {', '.join(self.plan.source_topics)})"
        )

    def pipe(
        self,
        topic: str,
        value: Any,
        key: Any = None,
        timestamp: int | None = None,
        headers: Headers | None = None,
    ) -> None:
        """Send one record to ``topic`` and process everything it causes.

        ``timestamp`` defaults to the driver's wall clock (see :meth:`advance_time`).
        """
        self._append(topic, key, value, timestamp, headers)
        self._pump()

    def pipe_many(
        self, topic: str, records: Iterable[Any], *, timestamp: int | None = None
    ) -> None:
        """Send many records, processed as micro-batches. Items are values, ``(key, value)``
        or ``(key, value, timestamp)`` tuples."""
        for r in records:
            if isinstance(r, tuple) and len(r) in (2, 3):
                self._append(topic, r[0], r[1], r[2] if len(r) == 3 else timestamp, None)
            else:
                self._append(topic, None, r, timestamp, None)
        self._pump()

    def _append(
        self, topic: str, key: Any, value: Any, timestamp: int | None, headers: Headers | None
    ) -> None:
        kser, vser = self._source_serdes(topic)
        kb, vb = kser.serialize(key), vser.serialize(value)
        p = 0 if kb is None else self._partitioner.partition(kb, self.partitions)
        ts = self.wall_clock_ms if timestamp is None else timestamp
        self.broker.append(topic, p, kb, vb, ts, headers or ())

    def _pump(self) -> None:
        """Process until no task has unread input (repartition round trips included)."""
        progressed = True
        while progressed:
            progressed = False
            for tp, pos in self._positions.items():
                msgs = self.broker.fetch_raw(tp, pos)
                if msgs:
                    sub = self.plan.subtopology_of(tp.topic)
                    self.tasks[TaskId(sub.id, tp.partition)].process(tp, msgs)
                    self._positions[tp] = msgs[-1][4] + 1
                    progressed = True

    # -- time ------------------------------------------------------------------------------------
    def advance_time(self, ms: int) -> None:
        """Advance the driver's wall clock (the default timestamp of piped records)."""
        if ms < 0:
            raise ValueError("time only moves forward")
        self.wall_clock_ms += ms

    # -- output ----------------------------------------------------------------------------------
    def read(
        self, topic: str, *, key: Serde | None = None, value: Serde | None = None
    ) -> list[Record]:
        """Records written to ``topic`` since the last read, in partition then offset order."""
        serdes = self.plan.sink_topics.get(topic)
        if serdes is None and (key is None or value is None):
            raise TopologyError(
                f"topic '{topic}' is not written by topology '{self.plan.app_id}' "
                f"(sinks: {', '.join(self.plan.sink_topics) or 'none'})"
            )
        kser = key or serdes[0]  # type: ignore[index]
        vser = value or serdes[1]  # type: ignore[index]
        out = []
        n = self.broker.partition_count(topic) or 0
        for p in range(n):
            tp = TopicPartition(topic, p)
            for m in self.broker.fetch(tp, self._read_pos.get(tp, 0)):
                out.append(
                    Record(
                        kser.deserialize(m.key),
                        vser.deserialize(m.value),
                        m.timestamp,
                        m.headers,
                        p,
                        m.offset,
                    )
                )
                self._read_pos[tp] = m.offset + 1
        return out

    def read_values(self, topic: str) -> list[Any]:
        return [r.value for r in self.read(topic)]

    def read_key_values(self, topic: str) -> list[tuple[Any, Any]]:
        return [(r.key, r.value) for r in self.read(topic)]

    def close(self) -> None:
        self.tasks.clear()

    def __enter__(self) -> TopologyTestDriver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["Record", "TopologyTestDriver"]
