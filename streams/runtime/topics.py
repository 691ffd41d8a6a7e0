"""The topics a worker needs: partition counts, co-partitioning checks, internal topics.

>>> import asyncio, streams as st
>>> from streams.runtime.embedded import EmbeddedBroker
>>> t = st.Topology("t"); t.source("in").key_by("k").count("n").to("out")
>>> b = EmbeddedBroker(); b.create_topic("in", 3); b.create_topic("out", 3)
>>> asyncio.run(partition_counts(b, t.compile()))["t-n-repartition"]
3
"""

from __future__ import annotations

from streams.compiler.compile import PhysicalPlan
from streams.core.errors import BrokerError
from streams.runtime.broker import Broker, TopicSpec
from streams.runtime.sources import connector_topics


async def partition_counts(broker: Broker, plan: PhysicalPlan) -> dict[str, int]:
    """Partition counts of every topic the plan reads or writes; creates the internal topics
    (repartition topics get their count from their inputs). Missing source or sink topics and
    stateful steps whose inputs are not co-partitioned are errors that name them."""
    counts: dict[str, int] = {}
    missing = []
    anchors = connector_topics(plan)  # connector sources' (one partition: one reader)
    if anchors:
        await broker.create_topics([TopicSpec(t, 1, {}) for t in anchors])
    for topic in plan.source_topics:
        n = await broker.partitions(topic)
        if n is None:
            missing.append(topic)
        else:
            counts[topic] = n
    if missing:
        raise BrokerError(f"source topic(s) {', '.join(missing)} do not exist: create them first")
    pending = list(plan.internal_topics)
    while pending:
        progressed = False
        for it in list(pending):
            if it.partitions is not None:
                counts[it.name] = it.partitions
            elif all(t in counts for t in it.partitions_from):
                counts[it.name] = max(counts[t] for t in it.partitions_from)
            else:
                continue
            pending.remove(it)
            progressed = True
        if not progressed:  # pragma: no cover - the compiler orders sub-topologies
            raise BrokerError(f"cannot derive partition counts for {[t.name for t in pending]}")
    for sub in plan.subtopologies:
        for step, topics in sub.copartitioned:
            if len({counts[t] for t in topics}) > 1:
                found = ", ".join(f"{t} ({counts[t]} partitions)" for t in topics)
                raise BrokerError(
                    f"step '{step}' reads {found}: the inputs of a stateful step must have "
                    "equal partition counts (co-partitioned); repartition one side with "
                    ".repartition(name, partitions=N)"
                )
    await broker.create_topics(
        [TopicSpec(t.name, counts[t.name], t.config) for t in plan.internal_topics]
    )
    for topic in plan.sink_topics:
        if topic not in counts:
            n = await broker.partitions(topic)
            if n is None:
                raise BrokerError(f"sink topic '{topic}' does not exist: create it first")
            counts[topic] = n
    return counts


__all__ = ["partition_counts"]
