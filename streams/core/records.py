"""Records and partitions as every layer sees them: fetched messages, records to produce,
topic partitions and topic specs (the broker protocols in :mod:`streams.runtime.broker` speak
of these).

>>> tp = TopicPartition("orders", 3)
>>> tp.topic, tp.partition
('orders', 3)
>>> as_raw(Message(b"k", b"v", 7, (), 0))[2]
7
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class TopicPartition(NamedTuple):
    topic: str
    partition: int


class Message(NamedTuple):
    """A fetched record (the attributes aiokafka's ``ConsumerRecord`` has too)."""

    key: bytes | None
    value: bytes | None
    timestamp: int
    headers: Sequence[tuple[str, bytes]]
    offset: int


OutRecord = tuple[bytes | None, bytes | None, int, Sequence[tuple[str, bytes]]]
"""A record to produce: ``(key, value, timestamp_ms, headers)``."""


RawMessage = tuple[bytes | None, bytes | None, int, Sequence[tuple[str, bytes]], int]
"""A fetched record as a plain tuple in :class:`Message`'s field order (embedded fast path)."""


def as_raw(m: Any) -> RawMessage:
    """A fetched record as a plain tuple, whichever broker fetched it (embedded records already
    are tuples; aiokafka's have attributes)."""
    if isinstance(m, tuple):
        return m
    return (m.key, m.value, m.timestamp, m.headers, m.offset)


def key_values(msgs: Sequence[Any]) -> list[tuple[Any, Any]]:
    """``(key, value)`` of each fetched record (changelog restores)."""
    if msgs and isinstance(msgs[0], tuple):
        return [(m[0], m[1]) for m in msgs]
    return [(m.key, m.value) for m in msgs]


def last_offset(msgs: Sequence[Any]) -> int:
    """The offset of the last record of a fetched batch (tuples or aiokafka records)."""
    m = msgs[-1]
    return m[4] if isinstance(m, tuple) else int(m.offset)


@dataclass(frozen=True)
class TopicSpec:
    """A topic to create: name, partition count and topic configs (``cleanup.policy``...)."""

    name: str
    partitions: int
    config: Mapping[str, str] = field(default_factory=dict)


__all__ = [
    "Message",
    "OutRecord",
    "RawMessage",
    "TopicPartition",
    "TopicSpec",
    "as_raw",
    "key_values",
    "last_offset",
]
