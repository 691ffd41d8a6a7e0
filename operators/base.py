"""Shared shapes of the physical layer: rows, batches, processors and the record collector.

A row is a tuple ``(key, value, timestamp_ms, headers, offset)``; ``offset`` is the source
offset of the record it came from (kept for error reports). A row batch is a ``list`` of rows.

>>> rows: Rows = [("k", {"n": 1}, 1000, (), 0)]
>>> Forward([]).process(rows)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

Headers = Sequence[tuple[str, bytes]]
Row = tuple[Any, Any, int, Headers, int]
Rows = list[Row]


class Processor(Protocol):
    """A node of a task's physical graph. ``process`` runs synchronously over one batch."""

    def process(self, rows: Rows) -> None: ...


class Collector(Protocol):
    """Where sinks put serialized records: the producer in a worker, the log in the driver."""

    def send_batch(
        self,
        topic: str,
        partition: int,
        records: list[tuple[bytes | None, bytes | None, int, Headers]],
    ) -> None:
        """Queue ``(key, value, timestamp, headers)`` records for one partition (no await)."""
        ...

    def partitions(self, topic: str) -> int: ...


def push(children: Sequence[Processor], rows: Rows) -> None:
    """Hand a non-empty batch to every child (an empty one goes nowhere)."""
    if rows:
        for c in children:
            c.process(rows)


class Forward:
    """Passes a batch on to every child (the shape of a fan-out with no work)."""

    __slots__ = ("children",)

    def __init__(self, children: list[Processor]) -> None:
        self.children = children

    def process(self, rows: Rows) -> None:
        for c in self.children:
            c.process(rows)


__all__ = ["Collector", "Forward", "Headers", "Processor", "Row", "Rows", "push"]
