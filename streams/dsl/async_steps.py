"""Async steps of a stream: ``map_async``, ``filter_async``, ``flat_map_async``.

Each awaits ``fn(value)`` per record, with up to ``concurrency`` calls in flight per task
(Flink's async I/O): a lookup in a service, a model behind HTTP. Results leave in input order
unless ``ordered=False``; a call is bounded by ``timeout`` (seconds) and tried ``retries`` more
times (after ``backoff`` seconds, doubled each time) before the step's error policy
(``.on_error(...)``) takes the record. A commit waits for the calls in flight, so nothing is
lost or repeated across a crash (see ``docs/how-to/call-a-service.md``).

>>> import asyncio
>>> import streams as st
>>> async def price(v):
...     await asyncio.sleep(0.001)  # an HTTP call, say
...     return {**v, "eur": v["usd"] * 0.9}
>>> t = st.Topology("shop")
>>> t.source("orders").map_async(price, concurrency=50, timeout=2.0, retries=2).to("priced")
>>> with st.TopologyTestDriver(t) as d:
...     d.pipe("orders", {"usd": 10})
...     d.read_values("priced")
[{'usd': 10, 'eur': 9.0}]
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from streams.core.errors import TopologyError
from streams.plan import nodes as plan

if TYPE_CHECKING:
    from streams.dsl.stream import Stream
    from streams.dsl.topology import Topology
    from streams.plan.nodes.async_call import AsyncStep


def _ms(step: str, what: str, seconds: float | None) -> int | None:
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
        raise TopologyError(f"step '{step}': {what} is in seconds, > 0; got {seconds!r}")
    return max(1, round(seconds * 1000))


class AsyncSteps:
    """The async methods of :class:`~streams.dsl.stream.Stream` (a mixin)."""

    __slots__ = ()

    if TYPE_CHECKING:
        _step: str
        _topology: Topology

        def _name(self, kind: str, name: str | None) -> str: ...

        def _then(self, node: plan.Node) -> Stream: ...

    def _async(
        self,
        cls: type[AsyncStep],
        kind: str,
        fn: Any,
        name: str | None,
        concurrency: int,
        ordered: bool,
        timeout: float | None,
        retries: int,
        backoff: float,
    ) -> Stream:
        step = self._name(kind, name)
        node = cls(
            step=step,
            parents=(self._step,),
            fn=plan.as_async_fn(step, fn),
            concurrency=concurrency,
            ordered=ordered,
            timeout_ms=_ms(step, "timeout", timeout),
            retries=retries,
            backoff_ms=(_ms(step, "backoff", backoff) or 0) if backoff else 0,
        )
        return self._then(node)

    def map_async(
        self,
        fn: Callable[[Any], Awaitable[Any]],
        *,
        concurrency: int = 100,
        ordered: bool = True,
        timeout: float | None = None,
        retries: int = 0,
        backoff: float = 0.1,
        name: str | None = None,
    ) -> Stream:
        """``await fn(value) -> new value``, up to ``concurrency`` calls in flight per task;
        the key is kept. ``timeout`` and ``backoff`` are in seconds (see the module doc)."""
        args = (concurrency, ordered, timeout, retries, backoff)
        return self._async(plan.MapAsync, "map-async", fn, name, *args)

    def filter_async(
        self,
        predicate: Callable[[Any], Awaitable[Any]],
        *,
        concurrency: int = 100,
        ordered: bool = True,
        timeout: float | None = None,
        retries: int = 0,
        backoff: float = 0.1,
        name: str | None = None,
    ) -> Stream:
        """Keep the records for which ``await predicate(value)`` is true (as
        :meth:`map_async` runs its calls)."""
        args = (concurrency, ordered, timeout, retries, backoff)
        return self._async(plan.FilterAsync, "filter-async", predicate, name, *args)

    def flat_map_async(
        self,
        fn: Callable[[Any], Awaitable[Iterable[Any]]],
        *,
        concurrency: int = 100,
        ordered: bool = True,
        timeout: float | None = None,
        retries: int = 0,
        backoff: float = 0.1,
        name: str | None = None,
    ) -> Stream:
        """``await fn(value) -> iterable of values``, each a record keeping the key (as
        :meth:`map_async` runs its calls)."""
        args = (concurrency, ordered, timeout, retries, backoff)
        return self._async(plan.FlatMapAsync, "flat-map-async", fn, name, *args)


__all__ = ["AsyncSteps"]
