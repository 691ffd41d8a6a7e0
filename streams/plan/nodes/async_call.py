"""Nodes of async steps: a coroutine function per record, its calls overlapped.

``map_async``, ``filter_async`` and ``flat_map_async`` call ``fn(value)`` (an ``async def``
function, or one returning an awaitable) with up to ``concurrency`` calls in flight per task;
with ``ordered`` the results leave in input order. A call that fails or takes longer than
``timeout_ms`` is tried again ``retries`` times (waiting ``backoff_ms``, doubled each time),
then goes to the step's error policy. The operator is :mod:`operators.async_call`.

>>> async def score(v): return v
>>> n = MapAsync(step="score", parents=("s",), fn=as_async_fn("score", score), concurrency=8)
>>> n.detail()
'score, concurrency=8, ordered'
>>> MapAsync(step="score", parents=("s",), fn=as_async_fn("score", score), retries=-1)
Traceback (most recent call last):
...
streams.core.errors.TopologyError: step 'score': retries must be an int >= 0, got -1
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, ClassVar

from streams.core.errors import TopologyError
from streams.plan.nodes.base import Fn, Node
from streams.plan.sync import is_async


def as_async_fn(step: str, f: Any) -> Fn:
    """Validate the function of an async step: a callable of one argument (the value) whose
    call gives an awaitable. A plain named ``def`` function is refused here (its result would
    not be awaitable); a lambda or callable object is checked at its first call."""
    if not callable(f):
        raise TopologyError(
            f"step '{step}': an async step needs an async function, got {type(f).__name__} {f!r}"
        )
    name = getattr(f, "__qualname__", None) or type(f).__qualname__
    plain = (inspect.isfunction(f) and f.__name__ != "<lambda>") or inspect.isbuiltin(f)
    if plain and not is_async(f):
        raise TopologyError(
            f"step '{step}': function {name} is not async (define it with 'async def'); "
            "a plain function goes in map_values/filter/flat_map_values"
        )
    try:
        inspect.signature(f).bind(None)
    except TypeError:
        raise TopologyError(
            f"step '{step}': function {name} must accept 1 argument (value)"
        ) from None
    except ValueError:  # (no signature to check)
        pass
    return Fn(f, 1)


def _positive(step: str, what: str, v: Any, low: int) -> None:
    if not isinstance(v, int) or isinstance(v, bool) or v < low:
        raise TopologyError(f"step '{step}': {what} must be an int >= {low}, got {v!r}")


@dataclass(frozen=True, kw_only=True)
class AsyncStep(Node):
    """What every async step has (see the module docstring)."""

    fn: Fn
    #: calls in flight at once per task (ordered: also results waiting for an earlier one)
    concurrency: int = 100
    #: results leave in input order (else as they complete)
    ordered: bool = True
    #: per attempt; None: no limit
    timeout_ms: int | None = None
    #: attempts after the first, for any failure (a timeout included)
    retries: int = 0
    #: wait before the first retry, doubled before each next one
    backoff_ms: int = 100

    def __post_init__(self) -> None:
        _positive(self.step, "concurrency", self.concurrency, 1)
        _positive(self.step, "retries", self.retries, 0)
        _positive(self.step, "backoff_ms", self.backoff_ms, 0)
        if self.timeout_ms is not None:
            _positive(self.step, "timeout_ms", self.timeout_ms, 1)
        if not isinstance(self.ordered, bool):
            raise TopologyError(f"step '{self.step}': ordered must be True or False")

    def detail(self) -> str:
        d = f"{self.fn.label}, concurrency={self.concurrency}, "
        d += "ordered" if self.ordered else "unordered"
        if self.timeout_ms is not None:
            d += f", timeout={self.timeout_ms} ms"
        if self.retries:
            d += f", retries={self.retries} (backoff {self.backoff_ms} ms)"
        return d


@dataclass(frozen=True, kw_only=True)
class MapAsync(AsyncStep):
    """``await fn(value) -> new value``; the key is kept."""

    kind: ClassVar[str] = "map_async"


@dataclass(frozen=True, kw_only=True)
class FilterAsync(AsyncStep):
    """Keeps the records for which ``await fn(value)`` is true."""

    kind: ClassVar[str] = "filter_async"
    keeps_values: ClassVar[bool] = True
    selects: ClassVar[bool] = True


@dataclass(frozen=True, kw_only=True)
class FlatMapAsync(AsyncStep):
    """``await fn(value) -> iterable of values``, each a record with the key kept."""

    kind: ClassVar[str] = "flat_map_async"


__all__ = ["AsyncStep", "FilterAsync", "FlatMapAsync", "MapAsync", "as_async_fn"]
