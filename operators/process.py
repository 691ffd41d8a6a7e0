"""The Processor API: a user function per record with stores and ``forward()``.

>>> from state.task_state import StoreDef, TaskStores
>>> from streams.plan import nodes as plan
>>> from streams.core.serde import KEY, PICKLE
>>> ts = TaskStores([StoreDef("seen", "kv", "c", KEY, PICKLE)], 0)
>>> def dedupe(ctx):
...     if ctx.key not in ctx.store("seen"):
...         ctx.store("seen").put(ctx.key, True)
...         ctx.forward(ctx.key, ctx.value)
>>> node = plan.Process(step="d", parents=("p",), fn=plan.Fn(dedupe),
...                     store_specs=(plan.StoreSpec("seen"),))
>>> out = []
>>> from operators.aggregate import Sink
>>> ProcessProcessor(node, ts, 0, [Sink(out)]).process([("a", 1, 5, (), 0), ("a", 2, 6, (), 1)])
>>> out
[('a', 1, 5, (), 0)]
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from operators.base import Processor, Rows, push
from operators.context import ProcessorContext
from operators.errors import ErrorPolicy
from state.task_state import ObjectKV, TaskStores
from streams.core.errors import ProcessingError, StreamsError
from streams.plan import nodes as plan

_CURRENT: Any = object()


class Timers:
    """Timers of one task's step: a heap in memory, mirrored in a key-value store."""

    def __init__(self, store: ObjectKV) -> None:
        self.store = store
        self._heap: list[tuple[int, int, str, Any]] | None = None
        self._seq = 0

    def _load(self) -> list[tuple[int, int, str, Any]]:
        if self._heap is None:
            self._heap = []
            for (kind, at, key), _ in self.store.items():
                self._seq += 1
                heapq.heappush(self._heap, (at, self._seq, kind, key))
        return self._heap

    def add(self, kind: str, at: int, key: Any) -> None:
        if (kind, at, key) in self.store:
            return
        self.store.put((kind, at, key), True)
        self._seq += 1
        heapq.heappush(self._load(), (at, self._seq, kind, key))

    def remove(self, kind: str, at: int, key: Any) -> None:
        self.store.delete((kind, at, key))  # the heap entry is skipped when it comes up

    def due(self, kind: str, now: int) -> list[tuple[int, Any]]:
        """Pop every live timer of ``kind`` with time <= ``now``, in time order."""
        heap, out, keep = self._load(), [], []
        while heap and heap[0][0] <= now:
            at, seq, k, key = heapq.heappop(heap)
            if k != kind:
                keep.append((at, seq, k, key))
            elif (k, at, key) in self.store:
                self.store.delete((k, at, key))
                out.append((at, key))
        for item in keep:
            heapq.heappush(heap, item)
        return out


class StepContext:
    """The :class:`~operators.context.ProcessorContext` of one ``process`` step in one task:
    the current record, the step's stores and timers, and ``forward``."""

    __slots__ = (
        "_out",
        "_stores",
        "_timers",
        "_views",
        "headers",
        "key",
        "offset",
        "partition",
        "timer",
        "timestamp",
        "value",
    )

    def __init__(self, stores: TaskStores, partition: int, names: Sequence[str]) -> None:
        self._stores = stores
        self._views: dict[str, ObjectKV] = {n: stores.kv(n) for n in names}
        self.partition = partition
        self._out: Rows = []
        self.key: Any = None
        self.value: Any = None
        self.timestamp = 0
        self.headers: Sequence[tuple[str, bytes]] = ()
        self.offset = 0
        self.timer: str | None = None  # "event" or "wall" while on_timer runs
        self._timers: Timers | None = None

    def store(self, name: str) -> ObjectKV:
        """A store declared in ``process(..., stores=[...])``."""
        try:
            return self._views[name]
        except KeyError:
            raise StreamsError(
                f"store '{name}' is not declared by this step (declared: "
                f"{', '.join(self._views) or 'none'})"
            ) from None

    def schedule(self, at_ms: int, *, wall_clock: bool = False, key: Any = _CURRENT) -> None:
        """Call the step's ``on_timer`` once event time (the watermark) — or, with
        ``wall_clock``, the wall clock — reaches ``at_ms``, for ``key`` (default: the current
        record's). Timers are kept in the step's store and survive restarts."""
        if self._timers is None:
            raise StreamsError("schedule() needs process(..., on_timer=fn)")
        self._timers.add(
            "wall" if wall_clock else "event", at_ms, self.key if key is _CURRENT else key
        )

    def cancel(self, at_ms: int, *, wall_clock: bool = False, key: Any = _CURRENT) -> None:
        """Drop a timer set with :meth:`schedule`."""
        if self._timers is not None:
            self._timers.remove(
                "wall" if wall_clock else "event", at_ms, self.key if key is _CURRENT else key
            )

    def forward(
        self,
        key: Any,
        value: Any,
        timestamp: int | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> None:
        """Emit a record downstream (timestamp and headers default to the current record's)."""
        self._out.append(
            (
                key,
                value,
                self.timestamp if timestamp is None else timestamp,
                self.headers if headers is None else headers,
                self.offset,
            )
        )


if TYPE_CHECKING:  # (mypy checks that the implementation is the public protocol)
    _CONFORMS: type[ProcessorContext] = StepContext


class ProcessProcessor:
    """Runs a ``process`` step's function on each record and its ``on_timer`` as the
    watermark (event-time timers) or the wall clock (wall-clock timers) reaches them."""

    def __init__(
        self,
        node: plan.Process,
        stores: TaskStores,
        partition: int,
        children: list[Processor],
        policy: ErrorPolicy | None = None,
    ) -> None:
        self.step = node.step
        self.policy = policy or ErrorPolicy(node.step)
        self.fn = node.fn.obj
        self.on_timer = node.on_timer.obj if node.on_timer is not None else None
        names = [s.name for s in node.stores if s.name != node.timer_store]
        self.ctx = StepContext(stores, partition, names)
        if node.timer_store is not None:
            self.ctx._timers = Timers(stores.kv(node.timer_store))
        self.children = children
        self.watermark = -(1 << 63)

    def process(self, rows: Rows) -> None:
        ctx, fn, policy = self.ctx, self.fn, self.policy
        out: Rows = []
        ctx._out = out
        for row in rows:
            ctx.key, ctx.value, ctx.timestamp, ctx.headers, ctx.offset = row
            try:
                fn(ctx)  # type: ignore[operator]
            except StreamsError:
                raise
            except Exception as e:  # what it forwarded and stored before failing stays
                err = ProcessingError(f"{type(e).__name__}: {e}", step=self.step, offset=ctx.offset)
                err.__cause__ = e
                policy.handle(row, err)  # raises under "fail"
        push(self.children, out)

    # -- timers -----------------------------------------------------------------------------
    def on_watermark(self, wm: int) -> None:
        """Fire the event-time timers the watermark has reached."""
        self.watermark = max(self.watermark, wm)
        self._fire("event", wm)

    def on_wall_clock(self, now: int) -> None:
        self._fire("wall", now)

    def _fire(self, kind: str, now: int) -> None:
        timers = self.ctx._timers
        if timers is None or self.on_timer is None:
            return
        ctx = self.ctx
        out: Rows = []
        ctx._out = out
        try:
            for at, key in timers.due(kind, now):
                ctx.key, ctx.value, ctx.timestamp, ctx.headers, ctx.offset = key, None, at, (), -1
                ctx.timer = kind
                self.on_timer(ctx)  # type: ignore[operator]
        except StreamsError:
            raise
        except Exception as e:
            raise ProcessingError(f"{type(e).__name__} in on_timer: {e}", step=self.step) from e
        finally:
            ctx.timer = None
        push(self.children, out)


__all__ = ["ProcessProcessor", "StepContext"]
