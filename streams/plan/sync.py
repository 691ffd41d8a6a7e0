"""User functions of steps are synchronous: an async one is rejected when the step is built.

A step calls its function once per record inside its batch loop and uses the result at once;
an ``async def`` function would return a coroutine there (always truthy to a ``filter``, an
unserializable value to a sink) and never run. :func:`reject_async` catches coroutine functions,
async generator functions, ``functools.partial`` of either and objects whose ``__call__`` is one.

>>> import functools
>>> async def lookup(v): ...
>>> is_async(lookup), is_async(functools.partial(lookup)), is_async(len)
(True, True, False)
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

from streams.core.errors import TopologyError

#: what to do instead
ASYNC_HINT = (
    "steps call their functions synchronously, so its coroutine would never run. "
    "Use map_async / filter_async / flat_map_async, which await it with many calls in flight "
    "(see docs/how-to/call-a-service.md), or pass a plain function"
)


def _is_async_def(f: Any) -> bool:
    return inspect.iscoroutinefunction(f) or inspect.isasyncgenfunction(f)


def is_async(fn: Any) -> bool:
    """Whether calling ``fn`` gives a coroutine or an async generator instead of a result."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    if _is_async_def(fn):
        return True
    if inspect.isfunction(fn) or inspect.ismethod(fn) or isinstance(fn, type):
        return False
    call = getattr(type(fn), "__call__", None)  # noqa: B004 (the class's, not the object's)
    return _is_async_def(call)


def _name(fn: Any) -> str:
    if isinstance(fn, functools.partial):
        return f"partial({_name(fn.func)})"
    return getattr(fn, "__qualname__", None) or f"{type(fn).__qualname__} object"


def reject_async(fn: Any, where: str, what: str) -> None:
    """Raise :class:`TopologyError` if ``fn`` is async (``where``: "step 'x'" or "agg.reduce").

    >>> async def score(v): ...
    >>> reject_async(score, "step 'score'", "function")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    streams.core.errors.TopologyError: step 'score': function score is an async function; ...
    """
    if is_async(fn):
        raise TopologyError(f"{where}: {what} {_name(fn)} is an async function; {ASYNC_HINT}")


__all__ = ["ASYNC_HINT", "is_async", "reject_async"]
