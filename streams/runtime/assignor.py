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

import json
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


def standby_assignment(
    members: Sequence[str], numbers: Sequence[int], replicas: int
) -> dict[str, list[int]]:
    """``{member: [partition numbers]}`` to keep warm copies of: the ``replicas`` members after
    each number's owner (in sorted member order), never the owner itself.

    >>> standby_assignment(["a", "b", "c"], [0, 1, 2, 3], 1)
    {'a': [2], 'b': [0, 3], 'c': [1]}
    """
    ms = sorted(members)
    out: dict[str, list[int]] = {m: [] for m in ms}
    if not ms:
        return out
    for i, p in enumerate(sorted(numbers)):
        owner = i % len(ms)
        for j in range(1, min(replicas, len(ms) - 1) + 1):
            out[ms[(owner + j) % len(ms)]].append(p)
    return out


def owner_endpoints(
    plan: Mapping[str, Mapping[str, Sequence[int]]], endpoints: Mapping[str, str]
) -> dict[str, list[int]]:
    """``{endpoint: [partition numbers]}``: who owns each number, for members with an endpoint.

    >>> owner_endpoints({"m-a": {"t": [0, 2]}, "m-b": {"t": [1]}}, {"m-a": "h1:80", "m-b": "h2:80"})
    {'h1:80': [0, 2], 'h2:80': [1]}
    """
    out: dict[str, list[int]] = {}
    for member, per_topic in plan.items():
        ep = endpoints.get(member)
        if ep:
            out[ep] = sorted({p for ps in per_topic.values() for p in ps})
    return out


class CopartitionedAssignor(AbstractPartitionAssignor):  # type: ignore[misc]
    """aiokafka assignor: every topic's partition ``p`` goes to the same group member.

    Members ask for standby replicas in their metadata (``{"standby_replicas": k}``, the
    largest request wins) and advertise their HTTP endpoint (``{"endpoint": "host:port"}``);
    the leader deals standby partition numbers with :func:`standby_assignment` and sends each
    member its list, plus every owner's endpoint (:func:`owner_endpoints`: interactive queries
    find a key's worker with it), in the assignment's user data.
    aiokafka calls these as class methods, so each consumer uses its own subclass
    (:meth:`for_consumer`) to keep what it was given.
    """

    name = "streams-copartitioned"
    version = 0
    standby_replicas = 0
    endpoint: str | None = None
    standby: frozenset[int] = frozenset()
    endpoints: Mapping[int, str] = {}

    @classmethod
    def for_consumer(
        cls, standby_replicas: int, endpoint: str | None = None
    ) -> type[CopartitionedAssignor]:
        return type(
            "CopartitionedAssignorOfConsumer",
            (cls,),
            {
                "standby_replicas": standby_replicas,
                "endpoint": endpoint,
                "standby": frozenset(),
                "endpoints": {},
            },
        )

    @classmethod
    def assign(cls, cluster: Any, members: Mapping[str, Any]) -> dict[str, Any]:
        counts: dict[str, int] = {}
        replicas = 0
        endpoints: dict[str, str] = {}
        for member, meta in members.items():
            for topic in meta.subscription:
                parts = cluster.partitions_for_topic(topic)
                if parts:
                    counts[topic] = max(parts) + 1
            data = _member_data(meta.user_data)
            replicas = max(replicas, _int(data.get("standby_replicas")))
            if isinstance(data.get("endpoint"), str):
                endpoints[member] = data["endpoint"]
        plan = copartitioned_assignment(
            counts, {m: list(meta.subscription) for m, meta in members.items()}
        )
        numbers = sorted({p for n in counts.values() for p in range(n)})
        standby = standby_assignment(list(members), numbers, replicas)
        owners = owner_endpoints(plan, endpoints)
        return {
            member: ConsumerProtocolMemberAssignment(
                cls.version,
                sorted(per_topic.items()),
                json.dumps({"standby": standby.get(member, []), "endpoints": owners}).encode(),
            )
            for member, per_topic in plan.items()
        }

    @classmethod
    def metadata(cls, topics: Iterable[str]) -> Any:
        meta: dict[str, Any] = {"standby_replicas": cls.standby_replicas}
        if cls.endpoint:
            meta["endpoint"] = cls.endpoint
        return ConsumerProtocolMemberMetadata(cls.version, list(topics), json.dumps(meta).encode())

    @classmethod
    def on_assignment(cls, assignment: Any) -> None:
        data = _member_data(assignment.user_data)
        try:
            cls.standby = frozenset(int(p) for p in data.get("standby", []))
        except (ValueError, TypeError):
            cls.standby = frozenset()
        owners: dict[int, str] = {}
        eps = data.get("endpoints")
        if isinstance(eps, dict):
            for ep, numbers in eps.items():
                if isinstance(numbers, list):
                    owners.update({int(p): str(ep) for p in numbers if isinstance(p, int)})
        cls.endpoints = owners


def _member_data(user_data: bytes | None) -> dict[str, Any]:
    """The JSON object in a member's user data ({} for a member of an older version, or
    another client)."""
    try:
        data = json.loads(user_data or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _int(x: Any) -> int:
    try:
        return int(x or 0)
    except (ValueError, TypeError):
        return 0


__all__ = [
    "CopartitionedAssignor",
    "copartitioned_assignment",
    "owner_endpoints",
    "standby_assignment",
]
