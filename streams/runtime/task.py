"""A task: one sub-topology's processors for one partition number.

The worker and the test driver both run tasks; they differ only in where input comes from and
where sinks' output goes (the :class:`~operators.base.Collector`).

>>> import streams as st
>>> from streams.runtime.embedded import EmbeddedBroker
>>> t = st.Topology("app"); t.source("in").map_values(st.col("n") * 2).to("out")
>>> b = EmbeddedBroker()
>>> task = Task(t.compile(), t.compile().subtopologies[0], 0, BrokerCollector(b))
>>> task.process(TopicPartition("in", 0), [Message(None, b'{"n":2}', 7, (), 0)])
>>> b.fetch(TopicPartition("out", 0), 0)[0].value
b'4'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from operators.base import Collector, Processor
from operators.fused import ChainProcessor
from operators.sink import SinkProcessor
from operators.source import Decoder
from streams import plan
from streams.compile import PhysicalPlan, SubTopology
from streams.runtime.broker import Message, OutRecord, TopicPartition, last_offset
from streams.runtime.embedded import EmbeddedBroker
from streams.serde import PICKLE


class TaskId(NamedTuple):
    subtopology: int
    partition: int

    def __str__(self) -> str:
        return f"{self.subtopology}_{self.partition}"


class BrokerCollector:
    """Sends straight into an embedded broker's log (the test driver's collector)."""

    def __init__(self, broker: EmbeddedBroker) -> None:
        self.broker = broker

    def send_batch(self, topic: str, partition: int, records: list[OutRecord]) -> None:
        self.broker.append_batch(topic, partition, records)

    def partitions(self, topic: str) -> int:
        n = self.broker.partition_count(topic)
        if n is None:
            self.broker.create_topic(topic, self.broker.default_partitions)
            n = self.broker.default_partitions
        return n


class Task:
    """Processors of sub-topology ``sub`` for partition ``partition``, wired to ``collector``."""

    def __init__(
        self, physical: PhysicalPlan, sub: SubTopology, partition: int, collector: Collector
    ) -> None:
        self.id = TaskId(sub.id, partition)
        self.sub = sub
        self.partition = partition
        topo = physical.topology
        procs: dict[str, Processor] = {}
        for seg in reversed(list(sub.segments.values())):
            if seg.kind == "chain":
                assert seg.chain is not None
                procs[seg.id] = ChainProcessor(
                    seg.chain, [[procs[c] for c in e] for e in seg.exits]
                )
            else:
                node = topo.node(seg.steps[0])
                assert isinstance(node, plan.Sink | plan.Repartition)
                internal = isinstance(node, plan.Repartition)
                procs[seg.id] = SinkProcessor(
                    node.step,
                    node.topic,
                    node.key_serde or PICKLE,
                    node.value_serde or PICKLE,
                    collector,
                    partition,
                    by_canonical_key=internal,
                )
        self.decoders: dict[str, Decoder] = {
            topic: Decoder(
                inp.step,
                topic,
                partition,
                inp.key_serde,
                inp.value_serde,
                inp.timestamp,
                [procs[c] for c in inp.children],
            )
            for topic, inp in sub.inputs.items()
        }
        self.positions: dict[TopicPartition, int] = {}
        self.processed = 0

    def process(self, tp: TopicPartition, msgs: Sequence[Any]) -> None:
        """Run one fetched batch of partition ``tp`` through the task, synchronously.

        ``msgs`` are Message-shaped: ``(key, value, timestamp, headers, offset)`` tuples or
        records with those attributes (aiokafka's ``ConsumerRecord``).
        """
        if not msgs:
            return
        self.decoders[tp.topic].process_messages(msgs)
        self.positions[tp] = last_offset(msgs) + 1
        self.processed += len(msgs)

    def __repr__(self) -> str:
        return f"Task({self.id})"


__all__ = ["BrokerCollector", "Message", "Task", "TaskId"]
