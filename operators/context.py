"""What a function passed to ``stream.process(...)`` receives: the typed ``ctx``.

``ctx`` is the current record (``key``, ``value``, ``timestamp``, ``headers``, ``offset``), the
task's ``partition``, the step's stores (``ctx.store(name)``), its timers (``schedule``,
``cancel``; ``timer`` says which kind fired while ``on_timer`` runs) and ``forward``, the only
way records go on. Annotate with it and a type checker checks the function:

>>> import streams as st
>>> def dedupe(ctx: st.ProcessorContext) -> None:
...     seen = ctx.store("seen")
...     if ctx.key not in seen:
...         seen.put(ctx.key, True)
...         ctx.forward(ctx.key, ctx.value)
>>> t = st.Topology("d")
>>> t.source("in").process("dedupe", dedupe, stores=["seen"]).to("out")
>>> d = st.TopologyTestDriver(t)
>>> for v in (1, 2):
...     d.pipe("in", v, key="a")
>>> d.read_values("out")
[1]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol


class ProcessorStore(Protocol):
    """A store a ``process`` step declared (``stores=[...]``): Python objects by key, kept in
    the task's state and its changelog. ``put(key, None)`` deletes."""

    def get(self, key: Any, default: Any = None) -> Any: ...

    def put(self, key: Any, value: Any) -> None: ...

    def delete(self, key: Any) -> None: ...

    def items(self) -> Iterator[tuple[Any, Any]]:
        """Every entry, in key-byte order (ordered for str, int and bytes keys)."""
        ...

    def range(self, lo: Any = None, hi: Any = None) -> Iterator[tuple[Any, Any]]:
        """Entries with ``lo <= key < hi`` (by encoded key order)."""
        ...

    def __contains__(self, key: Any) -> bool: ...

    def __len__(self) -> int: ...


class ProcessorContext(Protocol):
    """The ``ctx`` of a ``process`` step's function and of its ``on_timer`` (see the module
    docstring). Under ``on_timer``, ``key`` is the timer's key, ``value`` is None,
    ``timestamp`` the time it was set for and ``timer`` ``"event"`` or ``"wall"``."""

    @property
    def key(self) -> Any: ...

    @property
    def value(self) -> Any: ...

    @property
    def timestamp(self) -> int:
        """Event time of the record (epoch ms)."""
        ...

    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...

    @property
    def offset(self) -> int:
        """Source offset of the record (-1 under ``on_timer``)."""
        ...

    @property
    def partition(self) -> int:
        """The task's partition number."""
        ...

    @property
    def timer(self) -> str | None:
        """``"event"`` or ``"wall"`` while ``on_timer`` runs, else None."""
        ...

    def store(self, name: str) -> ProcessorStore:
        """A store declared in ``process(..., stores=[...])``."""
        ...

    def schedule(self, at_ms: int, *, wall_clock: bool = False, key: Any = ...) -> None:
        """Call ``on_timer`` once event time (or, with ``wall_clock``, the wall clock) reaches
        ``at_ms``, for ``key`` (default: the current record's)."""
        ...

    def cancel(self, at_ms: int, *, wall_clock: bool = False, key: Any = ...) -> None:
        """Drop a timer set with :meth:`schedule`."""
        ...

    def forward(
        self,
        key: Any,
        value: Any,
        timestamp: int | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> None:
        """Emit a record downstream (timestamp and headers default to the current record's)."""
        ...


__all__ = ["ProcessorContext", "ProcessorStore"]
