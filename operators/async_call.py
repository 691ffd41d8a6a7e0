"""Async steps: ``await fn(value)`` per record, the calls overlapped, as Flink's async I/O.

A task runs its batches synchronously; an :class:`AsyncCallProcessor` takes a batch into its
queue and returns at once. Its calls run as asyncio tasks on the task's event loop, at most
``concurrency`` at a time (ordered: also counting results that wait for an earlier record,
Flink's queue capacity), so calls overlap across the records of a batch *and* across batches:
the worker hands over the next batch as soon as every row of this one has started
(:meth:`pump`). Results go on to the children as they become ready, in input order when
``ordered`` (a completed result waits for the records before it), else as they complete; the
ready results of one loop iteration leave as one batch.

A call that raises or outlives ``timeout_ms`` is tried again ``retries`` times after
``backoff_ms`` (doubled each time, up to :data:`MAX_BACKOFF_S`); then the step's error policy
decides: ``fail`` stops the task (the error is raised by the next :meth:`process`,
:meth:`pump` or :meth:`drain`), ``skip`` counts a drop, ``dead_letter`` sends the original
record.

Checkpoints: a commit first :meth:`drain`\\ s every call (the task's ``drain_async``), so the
input offsets it commits never cover a record whose result was not emitted; a crash loses the
calls in flight with the uncommitted offsets, and they run again. Simple and correct, at the
cost of up to one call's latency per commit (Flink instead stores the in-flight records in the
checkpoint). The task holds its watermark while records are in flight, so a window after an
async step never closes before the records it is waiting for arrive.

>>> import asyncio
>>> from streams.plan import nodes as plan
>>> from operators.aggregate import Sink
>>> async def double(v):
...     await asyncio.sleep(0.001 * (3 - v))  # the last one finishes first
...     return v * 2
>>> node = plan.MapAsync(step="x2", parents=("s",), fn=plan.as_async_fn("x2", double))
>>> out = []
>>> p = AsyncCallProcessor(node, [Sink(out)], ErrorPolicy("x2"))
>>> p.process([("k", v, 0, (), v) for v in (1, 2, 3)])
>>> asyncio.run(p.drain())
>>> [r[1] for r in out]  # input order
[2, 4, 6]
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from collections.abc import Callable
from typing import Any

from operators.base import Processor, Row, Rows, push
from operators.errors import ErrorPolicy, wrap
from streams.core.errors import ProcessingError
from streams.plan.nodes.async_call import AsyncStep, FilterAsync, FlatMapAsync

#: the longest wait between two attempts, however many retries
MAX_BACKOFF_S = 30.0


class NotAwaitableError(TypeError):
    """The function gave no awaitable: a mistake, not tried again."""


class _Call:
    """One record's call: its row, then its result or error."""

    __slots__ = ("done", "error", "result", "row")

    def __init__(self, row: Row) -> None:
        self.row = row
        self.done = False
        self.result: Any = None
        self.error: ProcessingError | None = None


class AsyncCallProcessor:
    """The processor of a ``map_async``/``filter_async``/``flat_map_async`` step (see the
    module docstring)."""

    def __init__(self, node: AsyncStep, children: list[Processor], policy: ErrorPolicy) -> None:
        self.step = node.step
        self.fn: Callable[[Any], Any] = node.fn.as_callable()
        self.label = node.fn.label
        self.kind = (
            "filter"
            if isinstance(node, FilterAsync)
            else "flat_map"
            if isinstance(node, FlatMapAsync)
            else "map"
        )
        self.concurrency = node.concurrency
        self.ordered = node.ordered
        self.timeout = None if node.timeout_ms is None else node.timeout_ms / 1000
        self.timeout_ms = node.timeout_ms
        self.retries = node.retries
        self.backoff = node.backoff_ms / 1000
        self.children = children
        self.policy = policy
        self._waiting: deque[Row] = deque()  # rows not started yet
        self._queue: deque[_Call] = deque()  # ordered: started, not emitted, in input order
        self._done: list[_Call] = []  # unordered: finished, not emitted
        self._running = 0  # started, not finished
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None
        self._flush_soon = False
        self._failure: BaseException | None = None
        #: calls made (attempts), retried, timed out
        self.calls = self.retried = self.timed_out = 0

    # -- the task's side ----------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """Whether any record given to the step has not left it yet."""
        return bool(self._waiting or self._queue or self._done or self._running)

    def process(self, rows: Rows) -> None:
        """Queue ``rows``; on the step's event loop (a result of an upstream async step),
        start what fits at once."""
        self._raise()
        self._waiting.extend(rows)
        if self._loop is not None and _running_loop() is self._loop:
            self._start()

    async def pump(self) -> None:
        """Start calls; return once every row given so far has started (a full step makes
        the task wait before its next batch: backpressure)."""
        self._bind()
        self._start()
        while self._waiting and self._failure is None:
            await self._wait()
        self._raise()

    async def drain(self) -> None:
        """Run every call to its end and emit its result (before a commit). Returns at once,
        without suspending, when the step is idle."""
        if not self.busy:
            self._raise()
            return
        self._bind()
        self._start()
        while self.busy and self._failure is None:
            await self._wait()
        self._raise()

    def cancel(self) -> None:
        """Drop everything in flight (the task closes: its uncommitted input is read again)."""
        for t in list(self._tasks):
            t.cancel()
        self._tasks.clear()
        self._waiting.clear()
        self._queue.clear()
        self._done.clear()
        self._running = 0

    # -- calls --------------------------------------------------------------------------------
    def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            if self._tasks:  # pragma: no cover - a task runs on one loop
                raise RuntimeError(f"step '{self.step}': calls in flight on another event loop")
            self._loop, self._changed = loop, asyncio.Event()

    def _in_progress(self) -> int:
        return len(self._queue) if self.ordered else self._running + len(self._done)

    def _start(self) -> None:
        loop = self._loop
        assert loop is not None
        while self._waiting and self._failure is None and self._in_progress() < self.concurrency:
            c = _Call(self._waiting.popleft())
            if self.ordered:
                self._queue.append(c)
            self._running += 1
            t = loop.create_task(self._run(c))
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)

    async def _run(self, c: _Call) -> None:
        try:
            c.result = await self._attempts(c.row[1])
        except Exception as e:  # (not CancelledError: a closing task drops the call)
            c.error = wrap(self.step, e, c.row[4])
        c.done = True
        self._running -= 1
        if not self.ordered:
            self._done.append(c)
        if not self._flush_soon:  # (what completes in one loop iteration leaves as one batch)
            self._flush_soon = True
            assert self._loop is not None
            self._loop.call_soon(self._flush)

    async def _attempts(self, value: Any) -> Any:
        for attempt in range(self.retries + 1):
            self.calls += 1
            try:
                return await self._attempt(value)
            except NotAwaitableError:
                raise
            except Exception:
                if attempt == self.retries:
                    raise
                self.retried += 1
                await asyncio.sleep(min(self.backoff * 2**attempt, MAX_BACKOFF_S))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(self, value: Any) -> Any:
        aw = self.fn(value)
        if not inspect.isawaitable(aw):
            raise NotAwaitableError(
                f"function {self.label} returned {type(aw).__name__}, not an awaitable "
                "(an async step needs an async function)"
            )
        if self.timeout is None:
            return await aw
        try:
            return await asyncio.wait_for(aw, self.timeout)
        except TimeoutError:
            self.timed_out += 1
            raise TimeoutError(f"no result within {self.timeout_ms} ms") from None

    def _flush(self) -> None:
        """Emit the results that are ready, start calls that now fit, wake the waiters."""
        self._flush_soon = False
        try:
            if self.ordered:
                ready = []
                while self._queue and self._queue[0].done:
                    ready.append(self._queue.popleft())
            else:
                ready, self._done = self._done, []
            self._emit(ready)
            self._start()
        except BaseException as e:  # a 'fail' policy, or a step downstream that failed
            self._fail(e)
        if self._changed is not None:
            self._changed.set()

    def _emit(self, calls: list[_Call]) -> None:
        out: Rows = []
        for c in calls:
            k, _, ts, h, off = c.row
            if c.error is not None:
                self.policy.handle(c.row, c.error)  # (the original record, as it came in)
            elif self.kind == "map":
                out.append((k, c.result, ts, h, off))
            elif self.kind == "filter":
                if c.result:
                    out.append(c.row)
            else:
                try:
                    out.extend((k, v, ts, h, off) for v in c.result)
                except TypeError as e:  # (not iterable)
                    self.policy.handle(c.row, wrap(self.step, e, off))
        push(self.children, out)

    def _fail(self, e: BaseException) -> None:
        if self._failure is None:
            self._failure = e
        self.cancel()

    async def _wait(self) -> None:
        assert self._changed is not None
        self._changed.clear()
        await self._changed.wait()

    def _raise(self) -> None:
        if self._failure is not None:
            raise self._failure


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


__all__ = ["MAX_BACKOFF_S", "AsyncCallProcessor", "NotAwaitableError"]
