"""Foreign-key table-table join (KIP-213 style), in three steps across two sub-topologies.

1. **Subscribe** (left task): a left row with foreign key ``fk`` subscribes at the partition of
   ``fk`` in the right table (an internal topic keyed by ``fk``); a changed or removed foreign
   key unsubscribes the old one.
2. **Respond** (right task): remembers who subscribed to each right key; answers a subscription,
   and every subscriber of a right row that changes, with the right value (an internal topic keyed
   by the left key).
3. **Resolve** (left task): joins the *current* left row with the answer — unless the row's
   foreign key moved on since (an outdated answer is dropped, the new key's answer follows).

So updates on either side and foreign-key changes all reach the result, each as one upsert or
deletion of the left key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from operators.base import Processor, Rows, push
from operators.drops import Drops
from operators.join import Port
from operators.table import Getter
from state.task_state import ObjectKV
from streams.core.errors import ProcessingError
from streams.plan import nodes as plan


class FkSubscribeProcessor:
    def __init__(
        self,
        node: plan.FkSubscribe,
        fks: ObjectKV,
        children: list[Processor],
        drops: Drops | None = None,
    ) -> None:
        self.step = node.step
        self.drops = drops if drops is not None else Drops()
        self.fk: Callable[[Any], Any] = node.fk.as_callable()
        self.fks = fks
        self.children = children

    def process(self, rows: Rows) -> None:
        out: Rows = []
        o = None
        null_keys = 0
        try:
            for k, v, t, h, o in rows:
                if k is None:
                    null_keys += 1
                    continue
                new = None if v is None else self.fk(v)
                old = self.fks.get(k)
                if new is None:
                    self.fks.delete(k)
                    if old is not None or v is not None:  # the result row must be redone
                        out.append((old, ("-", k, True), t, h, o))
                    continue
                if old is not None and old != new:
                    out.append((old, ("-", k, False), t, h, o))
                self.fks.put(k, new)
                out.append((new, ("+", k, False), t, h, o))  # (re)join with the left update
        except Exception as e:
            raise ProcessingError(f"{type(e).__name__}: {e}", step=self.step, offset=o) from e
        finally:
            self.drops.add(self.step, "null_key", null_keys)
        push(self.children, out)


class FkRespondProcessor:
    """Two ports: ``left`` takes subscriptions, ``right`` the right table's changes."""

    def __init__(
        self, node: plan.FkRespond, subscribers: ObjectKV, right: Getter, children: list[Processor]
    ) -> None:
        self.step = node.step
        self.subs = subscribers
        self.right_get = right
        self.children = children
        self.left = Port(self._subscriptions)
        self.right = Port(self._right_changes)

    def _subscriptions(self, rows: Rows) -> None:
        out: Rows = []
        for fk, (op, lk, final), t, h, o in rows:
            if fk is not None:
                current = self.subs.get(fk) or frozenset()
                updated = current | {lk} if op == "+" else current - {lk}
                if updated:
                    self.subs.put(fk, frozenset(updated))
                else:
                    self.subs.delete(fk)
            if op == "+":
                out.append((lk, (fk, self.right_get(fk), "val"), t, h, o))
            elif final:
                out.append((lk, (fk, None, "gone"), t, h, o))
        push(self.children, out)

    def _right_changes(self, rows: Rows) -> None:
        out: Rows = []
        for fk, rv, t, h, o in rows:
            for lk in sorted(self.subs.get(fk) or (), key=repr):
                out.append((lk, (fk, rv, "val"), t, h, o))
        push(self.children, out)


class FkResolveProcessor:
    def __init__(self, node: plan.FkResolve, left: Getter, children: list[Processor]) -> None:
        self.step = node.step
        self.left_get = left
        self.fk: Callable[[Any], Any] = node.fk.as_callable()
        self.joiner = node.joiner.obj
        self.left_join = node.how == "left"
        self.children = children

    def process(self, rows: Rows) -> None:
        out: Rows = []
        o = None
        try:
            for lk, (fk, rv, kind), t, h, o in rows:
                lv = self.left_get(lk)
                if lv is None:
                    out.append((lk, None, t, h, o))
                    continue
                current = self.fk(lv)
                if kind == "gone":
                    if current is not None:
                        continue  # the row moved to another key: that answer will come
                elif current != fk:
                    continue  # an answer to an outdated foreign key
                if rv is None:
                    out.append((lk, self.joiner(lv, None) if self.left_join else None, t, h, o))  # type: ignore[operator]
                else:
                    out.append((lk, self.joiner(lv, rv), t, h, o))  # type: ignore[operator]
        except Exception as e:
            raise ProcessingError(f"{type(e).__name__}: {e}", step=self.step, offset=o) from e
        push(self.children, out)


__all__ = ["FkResolveProcessor", "FkRespondProcessor", "FkSubscribeProcessor"]
