"""Windowed aggregation: per (key, window) accumulators in a window or session store.

Time semantics (see docs/concepts/time-and-windows.md):

* a record belongs to the windows ``[start, end)`` that contain its event time;
* the watermark this operator knows (updated by the task between batches) decides lateness: a
  window whose ``end + grace <= watermark`` is closed; a record whose windows are all closed goes
  to the late output (exit 1) and changes nothing;
* ``emit="final"``: a closed window is emitted exactly once, when the watermark passes it;
  ``emit="update"``: each changed window is emitted once per micro-batch;
* closed windows are deleted from the store (tombstones go to the changelog).

One operator per window kind, over what they share (:mod:`operators.windowed_base`):
:class:`TumblingWindowsProcessor` (tumbling and hopping), :class:`ProcessingTimeWindowsProcessor`
(tumbling and hopping on the wall clock), :class:`SlidingWindowsProcessor`,
:class:`SessionWindowsProcessor`. ``WindowedAggregateProcessor(node, store, results, late,
execution=..., objects=...)`` makes the one of ``node.window``'s kind, and
:func:`execution_label` says how it runs its batches.

>>> from streams import agg, windows
>>> from streams.plan import nodes as plan
>>> node = plan.WindowedAggregate(step="s", parents=("p",), window=windows.session(ms=10),
...     aggs=(("n", agg.count()),), single=False, emit="final",
...     store=plan.StoreSpec("s", kind="session"))
>>> from state.backend import MemoryBackend
>>> from state.session import SessionStore
>>> p = WindowedAggregateProcessor(node, SessionStore(MemoryBackend()), [], [])
>>> type(p).__name__, execution_label(node, "columnar")
('SessionWindowsProcessor', 'columnar')
>>> execution_label(node, "row")
'row'
"""

from __future__ import annotations

from operators.windowed_base import (
    SMALL_BATCHES,
    WindowedAggregateProcessor,
    execution_label,
    processor_class,
    window_functions,
)
from operators.windowed_processing import ProcessingTimeWindowsProcessor
from operators.windowed_session import SessionWindowsProcessor
from operators.windowed_sliding import SlidingWindowsProcessor
from operators.windowed_tumbling import TumblingWindowsProcessor

__all__ = [
    "SMALL_BATCHES",
    "ProcessingTimeWindowsProcessor",
    "SessionWindowsProcessor",
    "SlidingWindowsProcessor",
    "TumblingWindowsProcessor",
    "WindowedAggregateProcessor",
    "execution_label",
    "processor_class",
    "window_functions",
]
