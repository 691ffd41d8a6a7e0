"""Per-key aggregation over a micro-batch, through the task's key-value store.

Each distinct key in a batch is read from the store once, folded over all its records, written
back once and emitted once with the batch's latest result (the write-back cache then turns many
batches into one changelog record per key per commit).

>>> from state.task_state import StoreDef, TaskStores
>>> from streams import agg
>>> from streams.plan import nodes as plan
>>> from streams.core.serde import KEY, PICKLE
>>> ts = TaskStores([StoreDef("n", "kv", "c", KEY, PICKLE)], 0)
>>> node = plan.Aggregate(step="n", parents=("p",), aggs=(("", agg.count()),), single=True,
...                       store=plan.StoreSpec("n"))
>>> out = []
>>> p = AggregateProcessor(node, ts.kv("n"), [Sink(out)])
>>> p.process([("a", 1, 10, (), 0), ("b", 1, 11, (), 1), ("a", 1, 12, (), 2)])
>>> out
[('a', 2, 12, (), 2), ('b', 1, 11, (), 1)]

A record without a key has no group: it is dropped and counted (``null_key``).

>>> p.process([(None, 1, 13, (), 3)])
>>> p.drops.counts
{('n', 'null_key'): 1}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from operators.base import Processor, Rows, push
from operators.drops import Drops
from operators.errors import ErrorPolicy
from operators.windowed_columnar import KeyedBatch
from state.task_state import ObjectKV
from streams.core.errors import ProcessingError
from streams.plan import nodes as plan

_MISSING = object()


def columnar_form(node: plan.Aggregate, execution: str) -> KeyedBatch | None:
    """The whole-batch Arrow form the operator of ``node`` runs under ``execution`` (None:
    record by record)."""
    return KeyedBatch.for_node(node) if execution != "row" else None


def execution_label(node: plan.Aggregate, execution: str) -> str:
    """How a keyed aggregation runs its batches under ``execution`` (a topology's ``"auto"``,
    ``"row"`` or ``"columnar"``): ``"columnar"`` (whole batches on Arrow; under ``"auto"``
    batches of 512+ records) or ``"row"`` (record by record).

    >>> from streams import agg
    >>> node = plan.Aggregate(step="n", parents=("p",), aggs=(("", agg.sum("x")),),
    ...                       single=True, store=plan.StoreSpec("n"))
    >>> execution_label(node, "auto"), execution_label(node, "row")
    ('columnar', 'row')
    """
    return "row" if columnar_form(node, execution) is None else "columnar"


class Sink:
    """Collects batches into a list (for examples and tests)."""

    def __init__(self, out: list[Any]) -> None:
        self.out = out

    def process(self, rows: Rows) -> None:
        self.out.extend(rows)


class AggregateProcessor:
    """Folds records into per-key accumulators; emits ``(key, result)`` per key per batch."""

    def __init__(
        self,
        node: plan.Aggregate,
        store: ObjectKV,
        children: list[Processor],
        policy: ErrorPolicy | None = None,
        *,
        execution: str = "row",
        drops: Drops | None = None,
    ) -> None:
        self.step = node.step
        self.policy = policy or ErrorPolicy(node.step, drops=drops)
        #: null-key records dropped, with the policy's skipped ones (the task's counts)
        self.drops = drops if drops is not None else self.policy.drops
        self.store = store
        self.children = children
        self._init, self._add, self._result = self._functions(node)
        # count/sum/min/max/mean of expressions: whole batches on Arrow (see windowed.py)
        self._batch = columnar_form(node, execution)
        self._batch_min = 1 if execution == "columnar" else 512
        merges = [a.merge for _, a in node.aggs]
        self._merge: Callable[[Any, list[Any]], Any] = (
            (lambda acc, p: merges[0](acc, p[0]))  # type: ignore[misc]
            if node.single
            else (lambda acc, p: [m(a, x) for m, a, x in zip(merges, acc, p, strict=True)])  # type: ignore[misc]
        )

    @staticmethod
    def presenter(node: plan.Aggregate) -> Callable[[Any], Any]:
        """accumulator -> what readers of the store see (the aggregation's result)."""
        return AggregateProcessor._functions(node)[2]

    @staticmethod
    def _functions(
        node: plan.Aggregate,
    ) -> tuple[Callable[[], Any], Callable[[Any, Any], Any], Callable[[Any], Any]]:
        aggs = [a for _, a in node.aggs]
        names = [n for n, _ in node.aggs]
        if node.single:
            return aggs[0].init, aggs[0].add, aggs[0].result
        inits = [a.init for a in aggs]
        adds = [a.add for a in aggs]
        results = [a.result for a in aggs]

        def init() -> list[Any]:
            return [f() for f in inits]

        def add(acc: list[Any], v: Any) -> list[Any]:
            return [f(x, v) for f, x in zip(adds, acc, strict=True)]

        def result(acc: list[Any]) -> dict[str, Any]:
            return {n: f(x) for n, f, x in zip(names, results, acc, strict=True)}

        return init, add, result

    def process(self, rows: Rows) -> None:
        if self._batch is not None and len(rows) >= self._batch_min:
            try:
                groups = self._batch.partials(rows)
            except Exception:  # Arrow could differ here: record by record below
                pass
            else:
                self._merge_groups(groups, rows)
                return
        accs: dict[Any, Any] = {}
        last: dict[Any, tuple[int, Any, int]] = {}  # key -> (max timestamp, headers, offset)
        get, init, add = self.store.get, self._init, self._add
        null_keys = 0
        for row in rows:
            k, v, t, h, o = row
            if k is None:
                # as Kafka Streams: a null key has no group; counted, never silently lost
                null_keys += 1
                continue
            acc = accs.get(k, _MISSING)
            try:  # (no cost in CPython 3.11 unless it raises)
                if acc is _MISSING:
                    acc = get(k, _MISSING)
                    if acc is _MISSING:
                        acc = init()
                accs[k] = add(acc, v)
            except Exception as e:
                err = ProcessingError(
                    f"{type(e).__name__}: {e} (key {k!r})", step=self.step, offset=o
                )
                err.__cause__ = e
                self.policy.handle(row, err)  # raises under "fail"
                continue
            prev = last.get(k)
            last[k] = (t if prev is None or t > prev[0] else prev[0], h, o)
        self.drops.add(self.step, "null_key", null_keys)
        put, result = self.store.put, self._result
        out: Rows = []
        for k, acc in accs.items():
            put(k, acc)
            t, h, o = last[k]
            out.append((k, result(acc), t, h, o))
        push(self.children, out)

    def _merge_groups(self, groups: list[tuple[Any, list[Any], int, int]], rows: Rows) -> None:
        """Merge each key's partial aggregates into the store, once per batch."""
        self.drops.add(self.step, "null_key", sum(1 for r in rows if r[0] is None))
        get, put, init, merge, result = (
            self.store.get,
            self.store.put,
            self._init,
            self._merge,
            self._result,
        )
        out: Rows = []
        for k, partial, t, last in groups:
            acc = get(k, _MISSING)
            acc = merge(init() if acc is _MISSING else acc, partial)
            put(k, acc)
            r = rows[last]
            out.append((k, result(acc), t, r[3], r[4]))
        push(self.children, out)


__all__ = ["AggregateProcessor", "Sink", "columnar_form", "execution_label"]
