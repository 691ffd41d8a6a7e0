"""``WindowedStream``: what ``stream.window("id", spec)`` returns, before the aggregation.

>>> import streams as st
>>> from streams import agg, windows
>>> t = st.Topology("w")
>>> w = t.source("clicks", timestamp="ts").window("per-minute", windows.tumbling(minutes=1))
>>> counts = w.aggregate(n=agg.count())
>>> late = w.late()
>>> counts.to("counts"); late.to("late")
>>> d = st.TopologyTestDriver(t)
>>> for ts in (1_000, 59_999, 60_000):
...     d.pipe("clicks", {"ts": ts}, key="u1")
>>> d.read_values("counts")  # emit="final": the first window closed when 60_000 arrived
[{'n': 2, 'window_start': 0, 'window_end': 60000}]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from streams.core.errors import TopologyError
from streams.core.policies import Emit, check_emit
from streams.plan import nodes as plan
from streams.plan.agg import Agg
from streams.plan.windows import Hopping, Session, Sliding, Tumbling

if TYPE_CHECKING:
    from streams.dsl.stream import Stream
    from streams.plan.windows import WindowSpec


class WindowedStream:
    """A keyed stream cut into windows; finish it with ``aggregate``, ``count`` or ``reduce``.

    Results are records with the original key and a dict value holding the aggregations (a
    single unnamed one under ``"value"``) plus ``window_start`` and ``window_end`` (ms).
    ``emit="final"`` (default) emits each window once, when the watermark passes its end +
    grace; ``emit="update"`` emits every change (one per key and window per micro-batch).
    """

    def __init__(self, stream: Stream, step: str, spec: WindowSpec, emit: Emit) -> None:
        if not isinstance(spec, Tumbling | Hopping | Session | Sliding):
            raise TopologyError(f"step '{step}': window() needs a windows.* spec, got {spec!r}")
        check_emit(emit, where=f"step '{step}'")
        self._stream, self.step, self.spec, self.emit = stream, step, spec, emit
        self._done = False

    def aggregate(self, agg: Agg | None = None, /, **named: Agg) -> Stream:
        if self._done:
            raise TopologyError(f"step '{self.step}': a windowed stream aggregates once")
        if (agg is None) == (not named):
            raise TopologyError(
                f"step '{self.step}': aggregate() takes one aggregation or named ones"
            )
        aggs = (("value", agg),) if agg is not None else tuple(named.items())
        for n, a in aggs:
            if not isinstance(a, Agg):
                raise TopologyError(f"step '{self.step}': {n} must be an agg.* aggregation")
            if isinstance(self.spec, Session) and a.merge is None:
                raise TopologyError(
                    f"step '{self.step}': {a!r} cannot merge sessions "
                    "(give agg.custom a merge function)"
                )
        t = self._stream.topology
        reads = frozenset().union(*(a.reads for _, a in aggs))
        t.builder.check_reads(self.step, self._stream.step, reads)
        parent = self._stream._stateful_parent(self.step)
        kind: Literal["window", "session"] = (
            "session" if isinstance(self.spec, Session) else "window"
        )
        store = plan.StoreSpec(self.step, kind, retention_ms=self.spec.retention_ms)
        node = plan.WindowedAggregate(
            step=self.step,
            parents=(parent,),
            window=self.spec,
            aggs=aggs,
            single=False,
            emit=self.emit,
            store=store,
        )
        self._done = True
        return self._stream._then_stateful(node) if t else self._stream

    def count(self) -> Stream:
        from streams.plan import agg as aggs

        return self.aggregate(n=aggs.count())

    def reduce(self, fn: Any) -> Stream:
        from streams.plan import agg as aggs

        return self.aggregate(value=aggs.reduce(fn))

    def late(self) -> Stream:
        """Records that arrived after their window closed (call after ``aggregate``)."""
        from streams.dsl.stream import Stream

        if not self._done:
            raise TopologyError(f"step '{self.step}': call late() after aggregate()")
        t = self._stream.topology
        step = t.builder.step_name("late", f"{self.step}-late")
        t.builder.add(plan.LateOutput(step=step, parents=(self.step,)))
        return Stream(t, step)


__all__ = ["WindowedStream"]
