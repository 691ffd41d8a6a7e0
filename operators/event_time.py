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
computed from a repartition topic's control records and carried watermarks). Windowed steps
and joins ask it for the watermark before each of their rows by the rows' source offsets
(:meth:`EventTime.marks`; Arrow steps :meth:`EventTime.marks_array`). Rows that are not from
the batch (window results emitted when the watermark moved, offset ``-1``) get the step's own
watermark.

The records of a repartition topic's Arrow message share one offset, but each carries its own
watermark (:mod:`operators.arrow_ipc`): the task gives the reader the rule that turns them into
marks (:meth:`EventTime.carry`, from the watermark tracker), and the decoded batch holds its
marks itself (:class:`CarriedMarks`, taken along by filters): Arrow steps read them as an array.
Where such a batch becomes rows, :meth:`EventTime.run_rows` hands them over in runs in which
each offset has one mark, so the rows' lookups by offset stay exact.

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

from operators.expr_arrow import int64_array

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
        #: Arrow messages with carried watermarks: offset -> (floor, cap), see carried()
        self._rules: dict[int, tuple[int, int | None]] = {}

    def start(self, watermark: int, prior_max: int | None, lag: int, cap: int | None) -> None:
        """A batch begins: the task's ``watermark``, the partition's largest event time seen
        before it (``None``: none yet), the source's out-of-orderness ``lag`` and the ceiling
        the task's other inputs put on its watermark (``None``: no other input holds it)."""
        self.active = True
        self._watermark, self._max, self._lag, self._cap = watermark, prior_max, lag, cap
        self._offsets, self._chunks = [], []
        self._index = self._all = self._const = None
        self._rules = {}

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

    def carry(self, rules: dict[int, tuple[int, int | None]]) -> None:
        """How the records of the Arrow messages at these offsets get their marks from the
        watermarks they carry: ``(floor, cap)``, each record's mark
        ``max(floor, min(carried, cap))`` (see
        :meth:`streams.runtime.watermarks.WatermarkTracker.writer_bounds`; ``floor`` also
        holds the task's watermark before the message)."""
        if self.active:
            self._rules.update(rules)

    def carried(
        self, offsets: Sequence[int], lengths: Sequence[int], wms: Sequence[Any]
    ) -> CarriedMarks | None:
        """The marks of a batch decoded from Arrow messages (at ``offsets``, one per message,
        of ``lengths`` records), each with its records' carried watermarks (an int64 array;
        None: an old message without them, whose records all get the mark of its offset).
        None: no message carried any."""
        if not self.active or all(w is None for w in wms):
            return None
        parts = []
        for o, n, w in zip(offsets, lengths, wms, strict=True):
            rule = self._rules.get(o)
            if w is None or rule is None:
                m = self.marks([o], _MIN)
                parts.append(pa.array([_MIN if m is None else m[0]] * n, pa.int64()))
                continue
            floor, cap = rule
            x = w.cast(pa.int64())  # each record's own (see Task._take_control)
            if cap is not None:
                x = pc.min_element_wise(x, cap)
            parts.append(pc.max_element_wise(x, floor))
        return CarriedMarks(pa.concat_arrays(parts) if len(parts) > 1 else parts[0], self)

    def run_rows(self, rows: Sequence[Any], marks: Any, process: Any) -> None:
        """``process(rows)``, rows whose marks (an Arrow array, one per row) are not one per
        offset: in runs that have one mark per offset, each run's marks looked up by offset
        (so every row path judges them exactly), then the batch's marks are back."""
        n = len(rows)
        if not self.active or not n:
            process(rows)
            return
        vals = marks.to_pylist()
        offs = [r[4] for r in rows]
        cuts = [i for i in range(1, n) if offs[i] == offs[i - 1] and vals[i] != vals[i - 1]]
        saved = self._offsets, self._chunks
        try:
            for lo, hi in zip([0, *cuts], [*cuts, n], strict=True):
                self._offsets, self._chunks = [offs[lo:hi]], [pa.array(vals[lo:hi], pa.int64())]
                self._index = self._all = self._const = None
                process(rows[lo:hi])
        finally:
            self._offsets, self._chunks = saved
            self._index = self._all = self._const = None

    def _add(self, offsets: Sequence[int], marks: Any) -> None:
        self._offsets.append(offsets)
        self._chunks.append(marks)
        self._index = self._all = self._const = None

    def end(self) -> None:
        """The batch is done: rows from now on get their step's watermark."""
        self.active = False
        self._offsets, self._chunks = [], []
        self._index = self._all = self._const = None
        self._rules = {}

    # -- what steps ask ----------------------------------------------------------------------
    def _lookup(self) -> tuple[tuple[int, int] | dict[int, int], Any]:
        if self._index is None:
            offs = _int64s(self._offsets)
            self._all = pa.concat_arrays(self._chunks) if self._chunks else pa.array([], pa.int64())
            n = len(offs)
            first = offs[0].as_py() if n else 0
            if n and offs[n - 1].as_py() - first + 1 == n and _increasing(offs):
                self._index = (first, n)  # contiguous: position = offset - first
            else:
                self._index = {o: i for i, o in enumerate(offs.to_pylist())}
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

    def batch_marks(self, batch: Any, default: int) -> Any:
        """:meth:`marks_array` for a columnar batch's records: the marks they carry (Arrow
        messages of a repartition topic), else looked up by their offsets."""
        if batch.marks is not None:
            return batch.marks.at(batch.pos)
        return self.marks_array(batch.offset_array(), default)


class CarriedMarks:
    """The watermark before each record of a columnar batch decoded from Arrow messages (see
    the module doc), at the batch's original positions."""

    __slots__ = ("event_time", "values")

    def __init__(self, values: Any, event_time: EventTime) -> None:
        self.values, self.event_time = values, event_time

    def at(self, pos: Any) -> Any:
        """The marks of the records still at positions ``pos`` (None: all), an Arrow array."""
        return self.values if pos is None else self.values.take(pos)

    def run_rows(self, rows: Sequence[Any], pos: Any, process: Any) -> None:
        """``process(rows)`` (the batch's records at ``pos``): :meth:`EventTime.run_rows`."""
        self.event_time.run_rows(rows, self.at(pos), process)


def _int64s(chunks: list[Any]) -> Any:
    """Chunks of offsets (lists or Arrow arrays) as one int64 array."""
    arrs = []
    for c in chunks:
        if isinstance(c, pa.ChunkedArray):
            c = c.combine_chunks()
        arrs.append(c.cast(pa.int64()) if isinstance(c, pa.Array) else int64_array(c))
    if not arrs:
        return pa.array([], pa.int64())
    return arrs[0] if len(arrs) == 1 else pa.concat_arrays(arrs)


def _increasing(xs: Any) -> bool:
    n = len(xs)
    return n < 2 or bool(pc.all(pc.greater(xs.slice(1), xs.slice(0, n - 1))).as_py())


__all__ = ["CarriedMarks", "EventTime"]
