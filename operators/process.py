"""The Processor API: a user function per record with stores and ``forward()``.

>>> from state.task_state import StoreDef, TaskStores
>>> from streams import plan
>>> from streams.serde import KEY, PICKLE
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

from collections.abc import Sequence
from typing import Any

from operators.base import Processor, Rows
from state.task_state import ObjectKV, TaskStores
from streams import plan
from streams.errors import ProcessingError, StreamsError


class ProcessorContext:
    """What a processor function sees: the current record, its stores, and ``forward``."""

    __slots__ = (
        "_out",
        "_stores",
        "_views",
        "headers",
        "key",
        "offset",
        "partition",
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

    def store(self, name: str) -> ObjectKV:
        """A store declared in ``process(..., stores=[...])``."""
        try:
            return self._views[name]
        except KeyError:
            raise StreamsError(
                f"store '{name}' is not declared by this step (declared: "
                f"{', '.join(self._views) or 'none'})"
            ) from None

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


class ProcessProcessor:
    def __init__(
        self, node: plan.Process, stores: TaskStores, partition: int, children: list[Processor]
    ) -> None:
        self.step = node.step
        self.fn = node.fn.obj
        self.ctx = ProcessorContext(stores, partition, [s.name for s in node.stores])
        self.children = children

    def process(self, rows: Rows) -> None:
        ctx, fn = self.ctx, self.fn
        out: Rows = []
        ctx._out = out
        try:
            for ctx.key, ctx.value, ctx.timestamp, ctx.headers, ctx.offset in rows:
                fn(ctx)  # type: ignore[operator]
        except StreamsError:
            raise
        except Exception as e:
            raise ProcessingError(
                f"{type(e).__name__}: {e}", step=self.step, offset=ctx.offset
            ) from e
        if out:
            for c in self.children:
                c.process(out)


__all__ = ["ProcessProcessor", "ProcessorContext"]
