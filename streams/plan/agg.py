"""Aggregations for ``aggregate(...)``: ``agg.count()``, ``agg.sum("amount")``, your own.

An aggregation is an accumulator with four functions: ``init() -> acc``, ``add(acc, value) ->
acc``, ``merge(a, b) -> acc`` (session windows merge) and ``result(acc) -> output``. The store
keeps accumulators (so ``mean`` keeps sum and count); readers see ``result``. Accumulators must
pickle (they go to the changelog). Nulls are skipped, as in SQL (``first`` and ``last`` keep
them, as SQL's ``FIRST_VALUE`` and ``LAST_VALUE`` do).

>>> a = mean("x")
>>> acc = a.init()
>>> for v in ({"x": 1}, {"x": None}, {"x": 5}):
...     acc = a.add(acc, v)
>>> a.result(acc)
3.0
>>> c = custom(init=lambda: 0, add=lambda acc, v: acc + len(v), name="chars")
>>> c.result(c.add(c.init(), "abc"))
3
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streams.core.errors import TopologyError
from streams.core.types import get_field
from streams.plan.expr import Col, Expr
from streams.plan.sync import reject_async

Extract = Callable[[Any], Any]


def _extractor(what: str | Expr | Callable[[Any], Any] | None) -> Extract | None:
    if what is None:
        return None
    if isinstance(what, str):
        what = Col(what)
    if isinstance(what, Expr):
        return what.compile()
    if callable(what):
        reject_async(what, "an aggregation", "the function")
        return what
    raise TopologyError(
        f"an aggregation takes a field name, an expression or a callable, not {what!r}"
    )


@dataclass(frozen=True)
class Agg:
    """An aggregation; build with the functions of this module."""

    name: str
    init: Callable[[], Any]
    add: Callable[[Any, Any], Any]
    merge: Callable[[Any, Any], Any] | None = None
    result: Callable[[Any], Any] = field(default=lambda acc: acc)
    #: for the columnar path: "count", "sum", "min", "max", "mean" or "argmax" (else
    #: "custom"), the expression it reads (None: a callable, which only runs row-wise) and, for
    #: argmax, the fields it keeps
    kind: str = "custom"
    of: Expr | None = None
    keep: tuple[str, ...] | None = None
    #: the fields of the record value it reads by name (checked where the schema is known)
    reads: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        return f"agg.{self.name}"


_NOTHING = None


def count() -> Agg:
    """Number of records."""
    return Agg("count()", lambda: 0, lambda acc, v: acc + 1, lambda a, b: a + b, kind="count")


def _over(
    name: str, what: Any, step: Callable[[Any, Any], Any], merge: Callable[[Any, Any], Any] | None
) -> Agg:
    ex = _extractor(what)
    if ex is None:
        raise TopologyError(f"agg.{name} needs a field, an expression or a callable")

    def add(acc: Any, v: Any) -> Any:
        x = ex(v)
        if x is None:
            return acc
        return x if acc is None else step(acc, x)

    of = _expr_of(what)
    return Agg(f"{name}({what!r})", lambda: None, add, merge, kind=name, of=of, reads=_reads(what))


def _expr_of(what: Any) -> Expr | None:
    return Col(what) if isinstance(what, str) else what if isinstance(what, Expr) else None


def _reads(what: Any) -> frozenset[str]:
    e = _expr_of(what)
    return frozenset() if e is None else e.columns()


def _nullable(f: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def merge(a: Any, b: Any) -> Any:
        if a is None:
            return b
        if b is None:
            return a
        return f(a, b)

    return merge


def sum(what: str | Expr | Callable[[Any], Any]) -> Agg:
    """Sum of non-null values (null when there are none, as SQL's SUM)."""
    add = lambda a, b: a + b  # noqa: E731
    return _over("sum", what, add, _nullable(add))


def min(what: str | Expr | Callable[[Any], Any]) -> Agg:
    """Smallest non-null value."""
    lo = lambda a, b: b if b < a else a  # noqa: E731
    return _over("min", what, lo, _nullable(lo))


def max(what: str | Expr | Callable[[Any], Any]) -> Agg:
    """Largest non-null value."""
    hi = lambda a, b: b if b > a else a  # noqa: E731
    return _over("max", what, hi, _nullable(hi))


def mean(what: str | Expr | Callable[[Any], Any]) -> Agg:
    """Arithmetic mean of non-null values; the accumulator is ``(sum, count)``."""
    ex = _extractor(what)
    assert ex is not None

    def add(acc: tuple[Any, int], v: Any) -> tuple[Any, int]:
        x = ex(v)
        return acc if x is None else (acc[0] + x, acc[1] + 1)

    return Agg(
        f"mean({what!r})",
        lambda: (0, 0),
        add,
        lambda a, b: (a[0] + b[0], a[1] + b[1]),
        lambda acc: acc[0] / acc[1] if acc[1] else None,
        kind="mean",
        of=_expr_of(what),
        reads=_reads(what),
    )


def argmax(what: str | Expr | Callable[[Any], Any], keep: tuple[str, ...] | list[str]) -> Agg:
    """The records with the largest ``what`` (every one of them on a tie, in arrival order),
    each as a dict of the fields ``keep``. O(1) per record that is not a new maximum or a tie;
    the accumulator is ``(largest, [kept, ...])``. Nexmark's "hot items" (q5) and "highest bid"
    (q7) are argmax.

    >>> a = argmax("price", keep=("id", "price"))
    >>> acc = a.init()
    >>> for v in ({"id": 1, "price": 5}, {"id": 2, "price": 9}, {"id": 3, "price": 9}):
    ...     acc = a.add(acc, v)
    >>> a.result(acc)
    [{'id': 2, 'price': 9}, {'id': 3, 'price': 9}]
    """
    ex = _extractor(what)
    if ex is None:
        raise TopologyError("agg.argmax needs a field, an expression or a callable")
    fields = tuple(keep)
    if not fields or not all(isinstance(f, str) and f for f in fields):
        raise TopologyError(f"agg.argmax: keep must name one or more fields, got {keep!r}")

    def add(acc: tuple[Any, list[dict[str, Any]]] | None, v: Any) -> Any:
        x = ex(v)
        if x is None:
            return acc
        # (the kept row is built only for a new maximum or a tie: most records are neither)
        if acc is None or x > acc[0]:
            return (x, [{f: get_field(v, f) for f in fields}])
        if x == acc[0]:
            return (acc[0], [*acc[1], {f: get_field(v, f) for f in fields}])
        return acc

    def merge(a: Any, b: Any) -> Any:
        if a is None:
            return b
        if b is None or b[0] < a[0]:
            return a
        if a[0] < b[0]:
            return b
        return (a[0], a[1] + b[1])

    return Agg(
        f"argmax({what!r})",
        lambda: None,
        add,
        merge,
        lambda acc: [] if acc is None else acc[1],
        kind="argmax",
        of=_expr_of(what),
        keep=fields,
        reads=_reads(what) | frozenset(fields),
    )


def first(what: str | Expr | Callable[[Any], Any] | None = None) -> Agg:
    """The first value seen, null or not (the whole record value when ``what`` is omitted)."""
    ex = _extractor(what) or (lambda v: v)
    return Agg(
        "first()",
        lambda: (False, None),
        lambda acc, v: acc if acc[0] else (True, ex(v)),
        lambda a, b: a if a[0] else b,
        lambda acc: acc[1],
        reads=_reads(what),
    )


def last(what: str | Expr | Callable[[Any], Any] | None = None) -> Agg:
    """The latest value seen, null or not."""
    ex = _extractor(what) or (lambda v: v)
    return Agg("last()", lambda: None, lambda acc, v: ex(v), lambda a, b: b, reads=_reads(what))


def collect(what: str | Expr | Callable[[Any], Any] | None = None) -> Agg:
    """All non-null values in arrival order, as a list (mind the memory on hot keys).

    >>> a = collect("x")
    >>> acc = a.init()
    >>> for v in ({"x": 1}, {"x": None}, {}, {"x": 3}):
    ...     acc = a.add(acc, v)
    >>> a.result(acc)
    [1, 3]
    """
    ex = _extractor(what) or (lambda v: v)

    def add(acc: list[Any], v: Any) -> list[Any]:
        x = ex(v)
        return acc if x is None else [*acc, x]

    return Agg("collect()", list, add, lambda a, b: a + b, reads=_reads(what))


def reduce(fn: Callable[[Any, Any], Any]) -> Agg:
    """``fn(accumulated, value)`` over record values; the first value starts it."""
    if not callable(fn):
        raise TopologyError(f"agg.reduce needs a callable, got {fn!r}")
    reject_async(fn, "agg.reduce", "the function")
    return Agg(
        f"reduce({getattr(fn, '__qualname__', fn)})",
        lambda: (False, None),
        lambda acc, v: (True, fn(acc[1], v) if acc[0] else v),
        None,
        lambda acc: acc[1],
    )


def custom(
    *,
    init: Callable[[], Any],
    add: Callable[[Any, Any], Any],
    merge: Callable[[Any, Any], Any] | None = None,
    result: Callable[[Any], Any] | None = None,
    name: str = "custom",
) -> Agg:
    """A user-defined aggregation (``merge`` is needed only for session windows)."""
    for n, f in (("init", init), ("add", add), ("merge", merge), ("result", result)):
        if f is not None and not callable(f):
            raise TopologyError(f"agg.custom: {n} must be callable, got {f!r}")
        reject_async(f, "agg.custom", n)
    return Agg(f"{name}()", init, add, merge, result or (lambda acc: acc))


__all__ = [
    "Agg",
    "argmax",
    "collect",
    "count",
    "custom",
    "first",
    "last",
    "max",
    "mean",
    "min",
    "reduce",
    "sum",
]
