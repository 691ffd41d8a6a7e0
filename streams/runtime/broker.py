"""The broker interface the runtime runs on: the embedded broker and Kafka implement it.

It is deliberately Kafka-shaped (topics, partitions, offsets, consumer groups, transactions),
so a topology behaves the same in-process as on a cluster.

>>> tp = TopicPartition("orders", 3)
>>> tp.topic, tp.partition
('orders', 3)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from streams.core.records import (
    Message,
    OutRecord,
    RawMessage,
    TopicPartition,
    TopicSpec,
    as_raw,
    key_values,
    last_offset,
)


class RebalanceListener(Protocol):
    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None: ...

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None: ...


class Consumer(Protocol):
    async def subscribe(self, topics: Sequence[str], listener: RebalanceListener) -> None: ...

    def assign(self, partitions: Sequence[TopicPartition]) -> None: ...

    def assignment(self) -> set[TopicPartition]: ...

    async def getmany(
        self, timeout_ms: int = 100, max_records: int = 10_000
    ) -> dict[TopicPartition, list[Message]]: ...

    def seek(self, tp: TopicPartition, offset: int) -> None: ...

    def position(self, tp: TopicPartition) -> int: ...

    def pause(self, tps: Sequence[TopicPartition]) -> None: ...

    def request_rejoin(self) -> None:
        """Rejoin the group: every partition is revoked and assigned again (positions from
        the committed offsets)."""
        ...

    def resume(self, tps: Sequence[TopicPartition]) -> None: ...

    async def commit(
        self,
        offsets: Mapping[TopicPartition, int],
        metadata: Mapping[TopicPartition, str] | None = None,
    ) -> None:
        """Commit the group's offsets, each with optional metadata (Kafka's offset metadata
        string: the runtime keeps the event time reached there)."""
        ...

    async def committed(self, tp: TopicPartition) -> int | None: ...

    async def committed_metadata(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, str]:
        """The metadata committed with the offsets of ``tps`` (partitions without any are left
        out)."""
        ...

    async def end_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]: ...

    async def close(self) -> None: ...

    def standby_partitions(self) -> set[int]:
        """Partition numbers to keep standby copies of (from the last group assignment)."""
        ...

    def endpoints(self) -> dict[int, str]:
        """Partition number -> the advertised endpoint (HTTP ``host:port``) of the member that
        owns it, from the last group assignment (members without an endpoint are left out)."""
        ...


class Producer(Protocol):
    """Buffered producer: ``send`` never awaits; ``flush`` makes everything sent durable."""

    transactional: bool

    def send_batch(self, topic: str, partition: int, records: list[OutRecord]) -> None:
        """Queue records for one partition; never awaits (a flusher or commit sends them)."""
        ...

    async def flush(self) -> None: ...

    async def wait_for_room(self) -> None:
        """Return once the records waiting to be sent are under the producer's limit: a slow
        broker slows the task down (and so the fetching) instead of growing memory."""
        ...

    async def begin(self) -> None: ...

    async def commit_transaction(
        self,
        offsets: Mapping[TopicPartition, int],
        group_id: str,
        metadata: Mapping[TopicPartition, str] | None = None,
    ) -> None:
        """Commit the open transaction with ``offsets`` (and their metadata) for ``group_id``."""
        ...

    async def abort(self) -> None: ...

    async def close(self) -> None: ...


class Broker(Protocol):
    async def create_topics(self, specs: Sequence[TopicSpec]) -> None: ...

    async def partitions(self, topic: str) -> int | None: ...

    def consumer(
        self,
        group_id: str | None,
        *,
        read_committed: bool = True,
        standby_replicas: int = 0,
        endpoint: str | None = None,
    ) -> Consumer:
        """A consumer; a group member advertises ``endpoint`` to the other members."""
        ...

    def producer(self, *, transactional_id: str | None = None) -> Producer: ...

    async def delete_records(self, before: Mapping[TopicPartition, int]) -> None:
        """Delete each partition's records before the given offset (Kafka's DeleteRecords:
        the partition's log start moves there; a fetch from below it starts at it)."""
        ...

    async def close(self) -> None: ...


def describe_broker(b: Any) -> str:
    return getattr(b, "address", type(b).__name__)


__all__ = [
    "Broker",
    "Consumer",
    "Message",
    "OutRecord",
    "Producer",
    "RawMessage",
    "RebalanceListener",
    "TopicPartition",
    "TopicSpec",
    "as_raw",
    "describe_broker",
    "key_values",
    "last_offset",
]
