"""Tumbling and hopping windows over processing time (``windows.tumbling(..., time="processing")``).

A record goes to the windows of the task's wall clock when the step runs it (its own timestamp
is not read), and a window ``[start, end)`` closes when the wall clock reaches ``end + grace``:
the task calls :meth:`on_wall_clock` at every punctuation, which a worker does at each poll
also when no record comes (and the test driver at ``advance_time``). The accumulators live in
the window store as for event-time windows (the same operator, :class:`TumblingWindowsProcessor`,
with the wall clock in the watermark's place), so open windows are checkpointed through the
changelog: after a restart they are restored and those whose end the wall clock has passed
close at the first punctuation. The event-time watermark closes nothing, except at the end of
a bounded input (``end_of_input``), where every window closes so the result is complete.

Records run one by one (no whole-batch Arrow path: the window comes from the clock, not from a
column); a columnar batch is converted to rows.

>>> from streams import agg, windows
>>> from streams.plan import nodes as plan
>>> from state.backend import MemoryBackend
>>> from state.window import WindowStore
>>> from state.window_objects import ObjectWindows
>>> node = plan.WindowedAggregate(step="w", parents=("p",),
...     window=windows.tumbling(ms=10, time="processing"), aggs=(("n", agg.count()),),
...     single=False, emit="final", store=plan.StoreSpec("w", kind="window"))
>>> store = WindowStore(MemoryBackend())
>>> out = []
>>> class Out:
...     def process(self, rows): out.extend(rows)
>>> p = ProcessingTimeWindowsProcessor(node, store, [Out()], [], objects=ObjectWindows(store))
>>> p.clock = lambda: 13
>>> p.process([("k", {}, 999_999, (), 0), ("k", {}, -5, (), 1)])  # timestamps are not read
>>> p.on_wall_clock(19); out
[]
>>> p.on_wall_clock(20); [(k, v) for k, v, *_ in out]
[('k', {'n': 2, 'window_start': 10, 'window_end': 20})]
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from operators.base import Rows, push
from operators.columnar import run_rows
from operators.windowed_tumbling import TumblingWindowsProcessor
from state.window_objects import ObjectWindows
from streams.core.wire import END_OF_TIME
from streams.plan import nodes as plan

_MIN = -(1 << 63)


def _system_clock() -> int:
    return int(time.time() * 1000)


class ProcessingTimeWindowsProcessor(TumblingWindowsProcessor):
    """Tumbling/hopping windows assigned and closed by the wall clock (``clock``: the task's,
    set when the task builds the step)."""

    #: the wall clock the windows have been closed to (what the tumbling code calls the
    #: watermark: see :attr:`watermark`)
    _wall = _MIN
    #: the task's event-time watermark, as the task sets it on a restore (closes nothing)
    _event_watermark = _MIN

    def _init_kind(self, node: plan.WindowedAggregate, objects: ObjectWindows | None) -> None:
        self.clock: Callable[[], int] = _system_clock
        super()._init_kind(node, objects)

    @property
    def watermark(self) -> int:
        """The time windows are judged and closed against: the wall clock of the last
        punctuation. (The task writes its event-time watermark here when it resumes from a
        checkpoint; that closes nothing on processing time.)"""
        return self._wall

    @watermark.setter
    def watermark(self, wm: int) -> None:
        self._event_watermark = wm

    # -- records ----------------------------------------------------------------------------
    @property
    def accepts_columnar(self) -> bool:
        return False

    def process_columnar(self, batch: Any) -> None:
        run_rows(batch, self.process)

    def _aggregate(self, rows: Rows) -> tuple[Rows, Rows]:
        # every record at the wall clock now (never before what has closed: a clock that
        # steps back makes no record late)
        now = max(self.clock(), self._wall)
        return super()._aggregate([(k, v, now, h, o) for k, v, _, h, o in rows])

    def _marks(self, rows: Rows) -> list[int] | None:
        return None  # (the wall clock, not the records' event-time marks, judges them)

    # -- time -------------------------------------------------------------------------------
    def on_wall_clock(self, now: int) -> None:
        """The wall clock reached ``now``: emit (``final``) and delete the windows it closed."""
        if now <= self._wall:
            return
        old, self._wall = self._wall, now
        push(self.results, self._close(old, now))

    def on_watermark(self, wm: int) -> None:
        """Event time closes nothing, except the end of a bounded input: every window."""
        if wm >= END_OF_TIME:
            self.on_wall_clock(END_OF_TIME)


__all__ = ["ProcessingTimeWindowsProcessor"]
