"""Tables and stream-table joins.

A :class:`TableMaterializer` upserts each record into the table's store (``None`` deletes; a
null key is dropped and counted, as in Kafka Streams) and forwards the change. A join looks the
key up through a *getter*: the store read plus the table's derivations (filter, map_values)
applied on read, so derived tables need no store of their own.

>>> from state.task_state import StoreDef, TaskStores
>>> from streams.core.serde import KEY, PICKLE
>>> ts = TaskStores([StoreDef("t", "kv", "c", KEY, PICKLE)], 0)
>>> out = []
>>> from operators.aggregate import Sink
>>> TableMaterializer(ts.kv("t"), [Sink(out)]).process([("k", 1, 0, (), 0), ("k", None, 1, (), 1)])
>>> ts.kv("t").get("k"), [r[1] for r in out]
(None, [1, None])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from operators.base import Processor, Rows, push
from operators.drops import Drops
from operators.errors import ErrorPolicy
from state.task_state import ObjectKV
from streams.core.errors import ProcessingError
from streams.plan import nodes as plan

Getter = Callable[[Any], Any]


class TableMaterializer:
    """Upserts rows into the table's store and forwards them as the change stream."""

    def __init__(
        self,
        store: ObjectKV,
        children: list[Processor],
        *,
        step: str = "",
        drops: Drops | None = None,
    ) -> None:
        self.store = store
        self.children = children
        self.step = step
        self.drops = drops if drops is not None else Drops()

    def process(self, rows: Rows) -> None:
        put, delete = self.store.put, self.store.delete
        changes: Rows = []
        null_keys = 0
        for row in rows:
            k, v = row[0], row[1]
            if k is None:
                null_keys += 1
                continue
            if v is None:
                delete(k)
            else:
                put(k, v)
            changes.append(row)
        self.drops.add(self.step, "null_key", null_keys)
        push(self.children, changes)


def make_getter(
    store: ObjectKV, derivations: Sequence[Any], present: Callable[[Any], Any] | None = None
) -> Getter:
    """``key -> value or None`` through the store and derived-table steps (innermost last)."""
    steps: list[Callable[[Any], Any]] = []
    for node in reversed(derivations):  # apply from the store outwards
        if isinstance(node, plan.TableMapValues):
            steps.append(node.fn.as_callable())
        elif isinstance(node, plan.TableFilter):
            steps.append(_filter_step(node.predicate.as_callable(), node.negate))
    get = store.get

    def getter(k: Any) -> Any:
        v = get(k)
        if v is not None and present is not None:
            v = present(v)
        for f in steps:
            if v is None:
                return None
            v = f(v)
        return v

    return getter


def _filter_step(pred: Callable[[Any], Any], negate: bool) -> Callable[[Any], Any]:
    def keep_if(v: Any) -> Any:
        r = pred(v)
        if negate:
            return None if r is None or r else v
        return v if r else None

    return keep_if


class LookupJoinProcessor:
    """Stream-table and stream-global-table joins: one lookup per record."""

    def __init__(
        self,
        node: plan.StreamTableJoin | plan.StreamGlobalJoin,
        getter: Getter,
        children: list[Processor],
        policy: ErrorPolicy | None = None,
    ) -> None:
        self.step = node.step
        self.policy = policy or ErrorPolicy(node.step)
        #: inner joins drop records without a key (a left join passes them, unmatched)
        self.drops = self.policy.drops
        self.getter = getter
        self.joiner = node.joiner.obj
        self.inner = node.how == "inner"
        self.key: Callable[[Any], Any] | None = None
        if isinstance(node, plan.StreamGlobalJoin):
            self.key = node.key.as_callable()
        self.children = children

    def process(self, rows: Rows) -> None:
        try:
            out = self._join(rows)
        except ProcessingError:
            if self.policy.fails:
                raise
            out = []  # lookups have no side effects: redo the batch record by record
            for row in rows:
                try:
                    out += self._join([row])
                except ProcessingError as e:
                    self.policy.handle(row, e)
        push(self.children, out)

    def _join(self, rows: Rows) -> Rows:
        get, joiner, inner, key = self.getter, self.joiner, self.inner, self.key
        out: Rows = []
        o = None
        null_keys = 0
        try:
            for k, v, t, h, o in rows:
                lookup = k if key is None else key(v)
                if lookup is None:
                    if inner:
                        null_keys += 1
                        continue
                    other = None
                else:
                    other = get(lookup)
                    if other is None and inner:
                        continue
                out.append((k, joiner(v, other), t, h, o))  # type: ignore[operator]
        except Exception as e:
            raise ProcessingError(f"{type(e).__name__}: {e}", step=self.step, offset=o) from e
        self.drops.add(self.step, "null_key", null_keys)
        return out


__all__ = ["Getter", "LookupJoinProcessor", "TableMaterializer", "make_getter"]
