"""The watermark before each record of the batch a task runs: where lateness is decided.

A task runs a micro-batch at once, but event time moves record by record, in offset order: a
record is judged against the watermark as it stood after the records before it. That is the
task's watermark when the batch started, advanced by the largest event time among the earlier
records of the batch's partition less the source's ``max_out_of_orderness``, and never past
what the task's other inputs allow (the task's watermark is a minimum over its inputs). So a
record is late, and a window closes, at the same record whether the input comes one record at
a time or in batches of 10,000: results do not depend on batch boundaries.

The task fills one :class:`EventTime` per batch (:meth:`EventTime.start`, then
:meth:`EventTime.observe` with the batch's event times, or :meth:`EventTime.put` with marks it
computed from a repartition topic's control records). Windowed steps and joins ask it for the
watermark before each of their rows by the rows' source offsets (:meth:`EventTime.marks`;
Arrow steps :meth:`EventTime.marks_array`). Rows that are not from the batch (window results
emitted when the watermark moved, offset ``-1``) get the step's own watermark.

>>> et = EventTime()
>>> et.start(watermark=0, prior_max=None, lag=10, cap=None)
>>> et.observe([5, 6, 7, 8], [100, 50, 130, 120])
>>> et.marks([5, 6, 7, 8, -1], default=0)
[0, 90, 90, 120, 0]
>>> et.end(); et.marks([5, 6], default=0) is None  # between batches: the step's watermark
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

_MIN = -(1 << 63)


class EventTime:
    """Per-record watermarks of the batch a task is running; see the module doc."""

    def __init__(self) -> None:
        self.active = False
        self._watermark = _MIN
        self._max: int | None = None  # the partition's largest event time before the next record
        self._lag = 0
        self._cap: int | None = None
        self._offsets: list[Any] = []  # per chunk: offsets (list or Arrow)
        self._chunks: list[Any] = []  # per chunk: the marks (Arrow int64)
        self._index: tuple[int, int] | dict[int, int] | None = None
        self._all: Any = None  # the marks of every chunk, one Arrow array
        self._const: bool | None = None

    def start(self, watermark: int, prior_max: int | None, lag: int, cap: int | None) -> None:
        """A batch begins: the task's ``watermark``, the partition's largest event time seen
        before it (``None``: none yet), the source's out-of-orderness ``lag`` and the ceiling
        the task's other inputs put on its watermark (``None``: no other input holds it)."""
        self.active = True
        self._watermark, self._max, self._lag, self._cap = watermark, prior_max, lag, cap
        self._offsets, self._chunks = [], []
        self._index = self._all = self._const = None

    def observe(self, offsets: Sequence[int], ts: Any) -> None:
        """The next records of the batch, in offset order, with their event times (a list or
        an Arrow array): each one's mark is computed from the records before it (one running
        max, on Arrow)."""
        n = len(offsets)
        if not self.active or not n:
            return
        t = ts if isinstance(ts, pa.Array | pa.ChunkedArray) else pa.array(ts, pa.int64())
        if isinstance(t, pa.ChunkedArray):
            t = t.combine_chunks()
        t = t.cast(pa.int64())
        run = pc.cumulative_max(t)
        first = _MIN + self._lag if self._max is None else self._max
        before = pa.concat_arrays([pa.array([first], pa.int64()), run.slice(0, n - 1)])
        if self._max is not None:
            before = pc.max_element_wise(before, self._max)
        top = run[n - 1].as_py()
        self._max = top if self._max is None else max(self._max, top)
        marks = pc.subtract(before, self._lag)
        if self._cap is not None:
            marks = pc.min_element_wise(marks, self._cap)
        self._add(offsets, pc.max_element_wise(marks, self._watermark))

    def put(self, offsets: Sequence[int], marks: Sequence[int]) -> None:
        """Marks the task computed itself (a repartition topic: from its control records)."""
        if self.active and offsets:
            self._add(offsets, pa.array(marks, pa.int64()))

    def _add(self, offsets: Sequence[int], marks: Any) -> None:
        self._offsets.append(offsets)
        self._chunks.append(marks)
        self._index = self._all = self._const = None

    def end(self) -> None:
        """The batch is done: rows from now on get their step's watermark."""
        self.active = False
        self._offsets, self._chunks = [], []
        self._index = self._all = self._const = None

    # -- what steps ask ----------------------------------------------------------------------
    def _lookup(self) -> tuple[tuple[int, int] | dict[int, int], Any]:
        if self._index is None:
            offs = [o for chunk in self._offsets for o in _pylist(chunk)]
            self._all = pa.concat_arrays(self._chunks) if self._chunks else pa.array([], pa.int64())
            first = offs[0] if offs else 0
            if offs and offs[-1] - first + 1 == len(offs) and offs == sorted(offs):
                self._index = (first, len(offs))  # contiguous: position = offset - first
            else:
                self._index = {o: i for i, o in enumerate(offs)}
            mm = pc.min_max(self._all) if len(self._all) else None
            self._const = mm is None or mm["min"].as_py() == mm["max"].as_py()
        return self._index, self._all

    def marks(self, offsets: Sequence[int], default: int) -> list[int] | None:
        """The watermark before each row (by its source offset; ``default`` for rows not of
        the batch), or None when every row sees ``default`` (judge them all against it)."""
        if not self._chunks:
            return None
        index, marks = self._lookup()
        if self._const and marks[0].as_py() == default:
            return None
        values = marks.to_pylist()
        if isinstance(index, tuple):
            first, n = index
            return [values[o - first] if 0 <= o - first < n else default for o in offsets]
        get = index.get
        out = []
        for o in offsets:
            i = get(o)
            out.append(default if i is None else values[i])
        return out

    def marks_array(self, offsets: Any, default: int) -> Any:
        """:meth:`marks` as an Arrow int64 array (None: every row sees ``default``)."""
        if not self._chunks:
            return None
        index, marks = self._lookup()
        if self._const and marks[0].as_py() == default:
            return None
        offs = offsets if isinstance(offsets, pa.Array) else pa.array(offsets, pa.int64())
        if isinstance(index, tuple):
            first, n = index
            pos = pc.subtract(offs, first)
            ok = pc.and_(pc.greater_equal(pos, 0), pc.less(pos, n))
            taken = pc.take(marks, pc.if_else(ok, pos, 0))
            return pc.if_else(ok, taken, default)
        return pa.array(self.marks(offs.to_pylist(), default), pa.int64())


def _pylist(xs: Any) -> list[int]:
    return xs.to_pylist() if hasattr(xs, "to_pylist") else list(xs)


__all__ = ["EventTime"]
