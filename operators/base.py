"""Shared shapes of the physical layer: rows, batches, processors and the record collector.

A row is a tuple ``(key, value, timestamp_ms, headers, offset)``; ``offset`` is the source
offset of the record it came from (kept for error reports). A row batch is a ``list`` of rows.

>>> rows: Rows = [("k", {"n": 1}, 1000, (), 0)]
>>> Forward([]).process(rows)

What a processor can do beyond ``process`` is a protocol: :class:`ColumnarProcessor` (takes
Arrow batches), :class:`TimedProcessor` (reacts to the watermark), :class:`WallClockProcessor`
(reacts to the wall clock).

>>> takes_columnar(Forward([])), isinstance(Forward([]), TimedProcessor)
(False, False)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeGuard, runtime_checkable

Headers = Sequence[tuple[str, bytes]]
Row = tuple[Any, Any, int, Headers, int]
Rows = list[Row]


class Processor(Protocol):
    """A node of a task's physical graph. ``process`` runs synchronously over one batch."""

    def process(self, rows: Rows) -> None: ...


@runtime_checkable
class ColumnarProcessor(Processor, Protocol):
    """A processor that can take a columnar batch (:class:`operators.columnar.ColumnarBatch`)
    as it is. ``accepts_columnar`` says whether this instance does (it may depend on its
    serdes, aggregations or execution mode); if not, it gets rows."""

    @property
    def accepts_columnar(self) -> bool: ...

    def process_columnar(self, batch: Any) -> None: ...


def takes_columnar(p: object) -> TypeGuard[ColumnarProcessor]:
    """Whether ``p`` takes columnar batches now (a :class:`ColumnarProcessor` that accepts).
    (The protocol's members looked up directly: ``isinstance`` of a runtime protocol costs
    ~10 us, and this runs per child per batch.)"""
    return (
        bool(getattr(p, "accepts_columnar", False))
        and hasattr(p, "process_columnar")
        and hasattr(p, "process")
    )


@runtime_checkable
class TimedProcessor(Protocol):
    """A processor that reacts to event time: the task calls ``on_watermark`` when the
    watermark advances, and sets ``watermark`` directly when it resumes from a checkpoint
    (what was closed before a restart stays closed, without emitting again). (Not a
    :class:`Processor` itself: a two-input join takes its records through its ports.)"""

    watermark: int

    def on_watermark(self, wm: int) -> None: ...


@runtime_checkable
class WallClockProcessor(Protocol):
    """A processor with wall-clock timers: the task calls ``on_wall_clock`` at each punctuation."""

    def on_wall_clock(self, now: int) -> None: ...


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


__all__ = [
    "Collector",
    "ColumnarProcessor",
    "Forward",
    "Headers",
    "Processor",
    "Row",
    "Rows",
    "TimedProcessor",
    "WallClockProcessor",
    "push",
    "takes_columnar",
]
