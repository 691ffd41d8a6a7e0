"""The processor that drives a connector sink in a task: it turns the task's rows into
:class:`~operators.connectors.api.SinkBatch` es, calls the writer's phases at the task's commit
and keeps *the fence* (see :mod:`operators.connectors.api`): the input positions each prepare
covered, recorded in the sink's state, and the re-read records below them skipped after a
recovery.

>>> from operators.connectors.api import Sink, SinkBatch, SinkContext, SinkWriter
>>> class Print(SinkWriter):
...     def write(self, batch: SinkBatch) -> None: print("write", batch.values())
...     def prepare(self, positions) -> None: print("prepare", dict(positions))
...     def publish(self) -> None: print("publish")
>>> state: dict = {}
>>> p = SinkProcessor(Print(), DictState(state))
>>> p.reading = TopicPartition("in", 0)
>>> p.process([(None, 1, 0, (), 0), (None, 2, 0, (), 1)])
write [1, 2]
>>> p.pre_commit({TopicPartition("in", 0): 2})
prepare {'in:0': 2}
>>> p.post_commit()
publish
>>> state
{'streams.upto': {'in:0': 2}}
>>> again = SinkProcessor(Print(), DictState(state))  # a restart that re-reads offset 1
>>> again.recover({TopicPartition("in", 0): 1})
>>> again.reading = TopicPartition("in", 0)
>>> again.process([(None, 2, 0, (), 1), (None, 3, 0, (), 2)])
write [3]
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from operators.base import Rows
from operators.connectors.api import UPTO_KEY, SinkBatch, SinkWriter
from streams.core.records import TopicPartition


def tp_key(tp: TopicPartition) -> str:
    """A partition as the connector API names it: ``"topic:partition"``."""
    return f"{tp.topic}:{tp.partition}"


def key_tp(key: str) -> TopicPartition:
    """The inverse of :func:`tp_key`."""
    topic, _, partition = key.rpartition(":")
    return TopicPartition(topic, int(partition))


class DictState:
    """A :class:`~operators.connectors.api.SinkState` over a dict (tests and doctests)."""

    def __init__(self, d: dict[Any, Any]) -> None:
        self.d = d

    def get(self, key: Any, default: Any = None) -> Any:
        return self.d.get(key, default)

    def put(self, key: Any, value: Any) -> None:
        self.d[key] = value

    def delete(self, key: Any) -> None:
        self.d.pop(key, None)


class SinkProcessor:
    """A task's processor of a connector sink step (one per partition)."""

    def __init__(self, writer: SinkWriter, state: Any) -> None:
        self.writer = writer
        self.state = state
        #: re-read input the sink already holds: partition -> position (see the module doc)
        self._fence: dict[TopicPartition, int] = {}
        self._positions: Mapping[TopicPartition, int] = {}  # the task's, live
        #: the input partition of the batch the task is running (its rows' offsets are its)
        self.reading: TopicPartition | None = None
        self.replayed_rows = 0  # re-read rows skipped after a recovery

    # -- records ------------------------------------------------------------------------------
    def process(self, rows: Rows) -> None:
        fence = self._retire_fence()
        if fence:
            kept = [r for r in rows if not 0 <= r[4] < fence]
            self.replayed_rows += len(rows) - len(kept)
            rows = kept
        if rows:
            src = None if self.reading is None else tp_key(self.reading)
            self.writer.write(SinkBatch(rows, src))

    def _retire_fence(self) -> int:
        """Drop the fence of partitions the task has read past; return the offset below which
        a row of the batch being run is re-read (0: none)."""
        fence = self._fence
        if not fence:
            return 0
        for tp, upto in list(fence.items()):
            if self._positions.get(tp, -1) >= upto:
                del fence[tp]
        if self.reading is not None:
            return fence.get(self.reading, 0)
        return min(fence.values(), default=0)

    def end_of_input(self) -> None:
        self.writer.end_of_input()

    # -- the task's commit --------------------------------------------------------------------
    def pre_commit(self, positions: Mapping[TopicPartition, int] | None = None) -> None:
        """Before the changelog and offsets: record the positions covered, then prepare."""
        upto = dict(self.state.get(UPTO_KEY) or {})
        for tp, off in (positions or {}).items():
            k = tp_key(tp)
            upto[k] = max(off, upto.get(k, off))
        self.state.put(UPTO_KEY, upto)
        self._retire_fence()
        self.writer.prepare(upto)

    def post_commit(self) -> None:
        """The commit is durable."""
        self.writer.publish()

    def abort(self) -> None:
        """The commit failed (the task is abandoned)."""
        self.writer.abort()

    def recover(
        self, positions: Mapping[TopicPartition, int] | None = None, tables: Collection[str] = ()
    ) -> None:
        """Task start, after the state is restored: the writer recovers; the fence is what the
        last prepare covered and what the writer says is published (``tables``: input topics
        that are tables, never re-read as rows)."""
        self._positions = positions if positions is not None else {}
        fence = {key_tp(k): off for k, off in (self.state.get(UPTO_KEY) or {}).items()}
        for k, off in (self.writer.recover() or {}).items():
            tp = key_tp(k)
            fence[tp] = max(off, fence.get(tp, off))
        self._fence = {tp: off for tp, off in fence.items() if tp.topic not in tables}

    def close(self) -> None:
        self.writer.close()


__all__ = ["DictState", "SinkProcessor", "key_tp", "tp_key"]
