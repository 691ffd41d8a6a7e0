"""The consumer-group partition assignor that keeps co-partitioned partitions together.

A task of a sub-topology owns partition *number* ``p`` of every topic it reads (a join reads
``left-p`` and ``right-p``), so the group must hand all topics' partition ``p`` to one member.
:class:`CopartitionedAssignor` does that: partition numbers are dealt round-robin over the sorted
member ids, and each member gets, for every topic it subscribes to, the partitions whose number it
was dealt. It is the same rule as ``EmbeddedBroker._rebalance``.

>>> copartitioned_assignment({"t": 4, "u": 4}, {"m-b": ["t", "u"], "m-a": ["t", "u"]})["m-a"]
{'t': [0, 2], 'u': [0, 2]}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aiokafka.coordinator.assignors.abstract import (  # type: ignore[import-untyped]
    AbstractPartitionAssignor,
)
from aiokafka.coordinator.protocol import (  # type: ignore[import-untyped]
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)


def copartitioned_assignment(
    partition_counts: Mapping[str, int], subscriptions: Mapping[str, Sequence[str]]
) -> dict[str, dict[str, list[int]]]:
    """``{member: {topic: [partitions]}}``: partition numbers dealt round-robin over sorted members.

    ``partition_counts`` holds the topics whose metadata is known; subscribed topics missing from
    it are left out (the group rebalances again once their metadata shows up).
    """
    members = sorted(subscriptions)
    topics = sorted({t for subs in subscriptions.values() for t in subs if t in partition_counts})
    numbers = sorted({p for t in topics for p in range(partition_counts[t])})
    out: dict[str, dict[str, list[int]]] = {}
    for i, member in enumerate(members):
        mine = numbers[i :: len(members)]
        per_topic: dict[str, list[int]] = {}
        for t in sorted(set(subscriptions[member])):
            n = partition_counts.get(t)
            if n is None:
                continue
            ps = [p for p in mine if p < n]
            if ps:
                per_topic[t] = ps
        out[member] = per_topic
    return out


class CopartitionedAssignor(AbstractPartitionAssignor):  # type: ignore[misc]
    """aiokafka assignor: every topic's partition ``p`` goes to the same group member."""

    name = "streams-copartitioned"
    version = 0

    @classmethod
    def assign(cls, cluster: Any, members: Mapping[str, Any]) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for meta in members.values():
            for topic in meta.subscription:
                parts = cluster.partitions_for_topic(topic)
                if parts:
                    counts[topic] = max(parts) + 1
        plan = copartitioned_assignment(
            counts, {m: list(meta.subscription) for m, meta in members.items()}
        )
        return {
            member: ConsumerProtocolMemberAssignment(cls.version, sorted(per_topic.items()), b"")
            for member, per_topic in plan.items()
        }

    @classmethod
    def metadata(cls, topics: Iterable[str]) -> Any:
        return ConsumerProtocolMemberMetadata(cls.version, list(topics), b"")

    @classmethod
    def on_assignment(cls, assignment: Any) -> None:
        return None


__all__ = ["CopartitionedAssignor", "copartitioned_assignment"]
