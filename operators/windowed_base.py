"""What every windowed aggregation shares, whatever its window kind: the accumulator functions,
how it runs (:func:`execution_label`), late records, emission, and the watermark.

A window kind's operator (:mod:`operators.windowed_tumbling`, :mod:`operators.windowed_sliding`,
:mod:`operators.windowed_session`) says how records go into its store (``_aggregate``) and what
closes when the watermark advances (``_close``). ``WindowedAggregateProcessor(node, ...)`` makes
the one that fits ``node.window``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]

from operators.base import Processor, Rows, push, takes_columnar
from operators.columnar import ColumnarBatch, push_columnar, run_rows
from operators.drops import Drops
from operators.event_time import EventTime
from operators.windowed_arrow import KINDS
from operators.windowed_columnar import WindowBatch
from state.session import SessionStore
from state.window import WindowStore
from state.window_objects import ObjectWindows
from streams.core.errors import ProcessingError
from streams.plan import nodes as plan
from streams.plan.windows import Hopping, Session, Sliding, Tumbling, WindowSpec

_MIN = -(1 << 63)
#: ("auto") smaller batches in a row that give the windows back to the objects
SMALL_BATCHES = 16
#: ("auto") the batch size from which whole batches run on Arrow
AUTO_BATCH_MIN = 512


def window_functions(
    node: plan.WindowedAggregate,
) -> tuple[
    Callable[[], list[Any]],
    Callable[[list[Any], Any], list[Any]],
    Callable[[list[Any], list[Any]], list[Any]],
    Callable[[list[Any], int, int], dict[str, Any]],
]:
    """``(init, add, merge, result)`` of a windowed aggregation's accumulator: a list with one
    slot per aggregation; ``result`` adds ``window_start``/``window_end``. Queries use it to
    present stored windows as the operator emits them."""
    names = [n for n, _ in node.aggs]
    aggs = [a for _, a in node.aggs]
    inits, adds, results = [a.init for a in aggs], [a.add for a in aggs], [a.result for a in aggs]
    merges = [a.merge for a in aggs]

    def init() -> list[Any]:
        return [f() for f in inits]

    def add(acc: list[Any], v: Any) -> list[Any]:
        return [f(x, v) for f, x in zip(adds, acc, strict=True)]

    def merge(a: list[Any], b: list[Any]) -> list[Any]:
        return [m(x, y) for m, x, y in zip(merges, a, b, strict=True)]  # type: ignore[misc]

    def result(acc: list[Any], start: int, end: int) -> dict[str, Any]:
        out = {n: f(x) for n, f, x in zip(names, results, acc, strict=True)}
        out["window_start"] = start
        out["window_end"] = end
        return out

    if len(aggs) == 1:  # the common case, without the loops (called per record and window)
        (init1,), (add1,), (res1,), (name,) = inits, adds, results, names

        def init() -> list[Any]:
            return [init1()]

        def add(acc: list[Any], v: Any) -> list[Any]:
            return [add1(acc[0], v)]

        def result(acc: list[Any], start: int, end: int) -> dict[str, Any]:
            # (as the general form: a field named window_start/_end keeps its place)
            return {name: res1(acc[0]), "window_start": start, "window_end": end}

    return init, add, merge, result


def columnar_plan(node: plan.WindowedAggregate, execution: str) -> tuple[WindowBatch | None, bool]:
    """How the operator of ``node`` runs under ``execution``: its whole-batch Arrow form (None:
    record by record) and whether its open windows live as an Arrow table
    (:class:`~operators.windowed_arrow.ArrowWindows`: final results of count/sum/min/max/mean)."""
    # (processing-time windows come from the wall clock, not a column: record by record)
    processing = getattr(node.window, "time", "event") == "processing"
    batch = WindowBatch.for_node(node) if execution != "row" and not processing else None
    on_arrow = (
        batch is not None and node.emit == "final" and all(a.kind in KINDS for _, a in node.aggs)
    )
    return batch, on_arrow


def execution_label(node: plan.WindowedAggregate, execution: str) -> str:
    """How a windowed aggregation runs its batches under ``execution`` (a topology's
    ``"auto"``, ``"row"`` or ``"columnar"``): ``"row"`` (record by record),
    ``"columnar"`` (whole batches on Arrow; under ``"auto"`` batches of 512+ records;
    sessions: :mod:`operators.windowed_session_arrow`) or
    ``"columnar + windows on Arrow"`` (its open windows are an Arrow table, too).

    >>> from streams import agg, windows
    >>> node = plan.WindowedAggregate(step="w", parents=("p",),
    ...     window=windows.tumbling(seconds=1), aggs=(("n", agg.count()),), single=False,
    ...     emit="final", store=plan.StoreSpec("w", kind="window"))
    >>> execution_label(node, "auto"), execution_label(node, "row")
    ('columnar + windows on Arrow', 'row')
    """
    batch, on_arrow = columnar_plan(node, execution)
    if isinstance(node.window, Session) and execution != "row":
        from operators.windowed_session_arrow import session_specs

        return "row" if session_specs(node) is None else "columnar"  # (sessions of a batch)
    if batch is None:
        return "row"
    return "columnar + windows on Arrow" if on_arrow else "columnar"


def processor_class(spec: WindowSpec) -> type[WindowedAggregateProcessor]:
    """The operator of a window kind."""
    from operators.windowed_processing import ProcessingTimeWindowsProcessor
    from operators.windowed_session import SessionWindowsProcessor
    from operators.windowed_sliding import SlidingWindowsProcessor
    from operators.windowed_tumbling import TumblingWindowsProcessor

    if isinstance(spec, Session):
        return SessionWindowsProcessor
    if isinstance(spec, Sliding):
        return SlidingWindowsProcessor
    if isinstance(spec, Tumbling | Hopping):
        if spec.time == "processing":
            return ProcessingTimeWindowsProcessor
        return TumblingWindowsProcessor
    raise TypeError(f"no windowed aggregation for {spec!r}")


class WindowedAggregateProcessor:
    """Per (key, window) aggregation: ``results`` get window results, ``late`` gets late
    records. ``WindowedAggregateProcessor(node, store, ...)`` is the operator of
    ``node.window``'s kind (:func:`processor_class`): tumbling and hopping windows over the
    store's ``objects`` (:class:`ObjectWindows`), sliding windows over a :class:`WindowStore`,
    sessions over a :class:`SessionStore`."""

    def __new__(
        cls, node: plan.WindowedAggregate, *args: Any, **kwargs: Any
    ) -> WindowedAggregateProcessor:
        if cls is WindowedAggregateProcessor:
            cls = processor_class(node.window)
        return super().__new__(cls)

    #: what a window kind's operator runs on (checked when it is built)
    window_types: tuple[type, ...] = ()
    store_type: type = object
    needs_objects = False

    def __init__(
        self,
        node: plan.WindowedAggregate,
        store: WindowStore | SessionStore,
        results: list[Processor],
        late: list[Processor],
        *,
        execution: str = "row",
        objects: ObjectWindows | None = None,
    ) -> None:
        kind = type(self).__name__
        if self.needs_objects and objects is None:
            raise ValueError(f"step '{node.step}': {kind} needs the store's ObjectWindows")
        if not isinstance(node.window, self.window_types) or not isinstance(store, self.store_type):
            raise TypeError(
                f"step '{node.step}': {kind} runs {[w.__name__ for w in self.window_types]} "
                f"windows over a {self.store_type.__name__}, got "
                f"{type(node.window).__name__} over {type(store).__name__}"
            )
        self.step = node.step
        self.spec = node.window
        self.emit = node.emit
        self.store = store
        self.objects = objects
        self.results, self.late = results, late
        self.watermark = _MIN
        self.late_records = 0
        #: the watermark before each record of the batch (set by the task's wiring)
        self.event_time = EventTime()
        #: where late records nobody reads and records without a key are counted
        self.drops = Drops()
        self._init, self._add, self._merge, self._result = window_functions(node)
        # whole batches on Arrow (tumbling/hopping, count/sum/min/max/mean): from this many
        # records ("auto"), any ("columnar"), never ("row")
        self._batch, self._windows_on_arrow = columnar_plan(node, execution)
        self._batch_min = 1 if execution == "columnar" else AUTO_BATCH_MIN
        self._execution = execution
        self._node_aggs = node.aggs
        self._names = [n for n, _ in node.aggs]
        self._results = [a.result for _, a in node.aggs]
        self._init_kind(node, objects)

    def _init_kind(self, node: plan.WindowedAggregate, objects: ObjectWindows | None) -> None:
        """What a window kind sets up beyond the shared state (nothing by default)."""

    # -- records ----------------------------------------------------------------------------
    @property
    def accepts_columnar(self) -> bool:
        """Whether Arrow batches are aggregated as they are (a repartition topic's Arrow
        messages, a columnar chain), without rows: see :func:`execution_label`."""
        return self._batch is not None

    def process_columnar(self, batch: Any) -> None:
        run_rows(batch, self.process)

    def process(self, rows: Rows) -> None:
        try:
            out, late = self._aggregate(rows)
        except ProcessingError:
            raise
        except Exception as e:
            raise ProcessingError(f"{type(e).__name__}: {e}", step=self.step) from e
        self._emit_late(late)
        push(self.results, out)

    def _aggregate(self, rows: Rows) -> tuple[Rows, Rows]:
        """Put ``rows`` into the windows: ``(results to emit now, late records)``."""
        raise NotImplementedError

    #: each row's mark, when the batch being run came with them (:meth:`process_marked`)
    _given: list[int] | None = None

    def process_marked(self, rows: Rows, marks: list[int]) -> None:
        """``process(rows)``, each row judged against its own mark (records that carried
        their watermarks through a repartition topic, many per offset)."""
        self._given = marks
        try:
            self.process(rows)
        finally:
            self._given = None

    def _marks(self, rows: Rows) -> list[int] | None:
        """The watermark before each of ``rows`` (None: the step's own for all of them): a
        record is late against the records before it, not against the batch's start."""
        given = self._given
        if given is not None and len(given) == len(rows):
            return given
        et = self.event_time
        if not et.active:
            return None
        return et.marks([r[4] for r in rows], self.watermark)

    def _marks_array(self, offsets: Any) -> Any:
        """:meth:`_marks` as an Arrow array for whole-batch paths (an int: the same for all)."""
        given = self._given
        if given is not None and len(given) == len(offsets):
            return pa.array(given, pa.int64())
        et = self.event_time
        marks = et.marks_array(offsets, self.watermark) if et.active else None
        return self.watermark if marks is None else marks

    def _batch_marks(self, batch: ColumnarBatch) -> Any:
        """:meth:`_marks_array` of a columnar batch's records: the marks they carry (Arrow
        messages of a repartition topic), else looked up by their offsets."""
        et = self.event_time
        marks = et.batch_marks(batch, self.watermark) if et.active else None
        return self.watermark if marks is None else marks

    def _emit_late(self, late: Rows) -> None:
        if late:
            self.late_records += len(late)
            if not self.late:
                self.drops.add(self.step, "late", len(late))
            for c in self.late:
                c.process(late)

    def _null_keys(self, n: int) -> None:
        """Count ``n`` records without a key (a window needs one): dropped."""
        if n:
            self.drops.add(self.step, "null_key", n)

    # -- time -------------------------------------------------------------------------------
    def on_watermark(self, wm: int) -> None:
        """The watermark advanced: emit (``final``) and delete the windows it closed."""
        if wm <= self.watermark:
            return
        old, self.watermark = self.watermark, wm
        push(self.results, self._close(old, wm))

    def _close(self, old: int, wm: int) -> Rows:
        """The watermark moved from ``old`` to ``wm``: delete the windows it closed, return
        the final results to emit as rows (or emit them columnar and return none)."""
        raise NotImplementedError

    # -- emission ---------------------------------------------------------------------------
    def _columnar_out(self, n: int) -> bool:
        """Whether ``n`` closed windows leave as one Arrow batch: a child takes one (columnar
        mode) and the result fields are not named as the window's bounds."""
        names = self._names
        return (
            self._batch is not None
            and n >= self._batch_min
            and any(takes_columnar(c) for c in self.results)
            and "window_start" not in names
            and "window_end" not in names
        )

    def _push_closed(
        self, cols: dict[str, Any], keys: list[Any], starts: list[int], size: int
    ) -> None:
        """Closed windows ``[start, start + size)`` as one Arrow batch to the results."""
        cols["window_start"] = pa.array(starts, pa.int64())
        cols["window_end"] = pa.array([s + size for s in starts], pa.int64())
        n = len(starts)
        batch = ColumnarBatch(
            cols,
            n,
            keys=keys,
            ts=[s + size - 1 for s in starts],
            headers=[()] * n,
            offsets=[-1] * n,
        )
        push_columnar(self.results, batch)


__all__ = [
    "AUTO_BATCH_MIN",
    "SMALL_BATCHES",
    "WindowedAggregateProcessor",
    "columnar_plan",
    "execution_label",
    "processor_class",
]
