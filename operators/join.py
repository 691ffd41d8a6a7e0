"""Two-input joins: stream-stream within a window, table-table on the key.

A two-input processor exposes two *ports*; the task wires each parent to its side's port.

Stream-stream (Kafka Streams semantics, with a watermark instead of stream time): a left record
at ``t`` meets right records of its key in ``[t - before, t + after]``; each pair is emitted as
soon as both are there, with the later timestamp. Both sides are buffered in window stores until
their window closes (watermark > ``t + after + grace`` for a left record, ``t + before + grace``
for a right one: the bounds are inclusive); then an unmatched record of an outer side is
emitted once, joined with ``None`` — never earlier, so there are no spurious null results.
A record arriving after its window closed is dropped (and counted); so is one without a key.

Table-table: a change on either side looks up the other side's current value and emits the
new joined value for that key, or a deletion (``None``) when the key no longer matches.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

from operators.base import Processor, Rows, push
from operators.drops import Drops
from operators.event_time import EventTime
from operators.table import Getter
from state.window import WindowStore
from streams.core.errors import ProcessingError
from streams.core.serde import KEY
from streams.plan import nodes as plan

_MIN = -(1 << 63)


class Port:
    """One input of a two-input processor."""

    def __init__(self, fn: Callable[[Rows], None]) -> None:
        self.process = fn


class StreamStreamJoinProcessor:
    def __init__(
        self,
        node: plan.StreamStreamJoin,
        left: WindowStore,
        right: WindowStore,
        children: list[Processor],
        drops: Drops | None = None,
    ) -> None:
        self.step = node.step
        self.drops = drops if drops is not None else Drops()
        self.win = node.window
        self.joiner = node.joiner.obj
        self.how = node.how
        self.stores = (left, right)
        self.children = children
        self.watermark = _MIN
        self.late_records = 0
        #: the watermark before each record of the batch (set by the task's wiring)
        self.event_time = EventTime()
        self.left = Port(lambda rows: self._side(rows, 0))
        self.right = Port(lambda rows: self._side(rows, 1))

    def _side(self, rows: Rows, side: int) -> None:
        w = self.win
        mine, theirs = self.stores[side], self.stores[1 - side]
        # a left record at t sees right ones in [t - before, t + after]; a right one the mirror
        lo, hi = (w.before_ms, w.after_ms) if side == 0 else (w.after_ms, w.before_ms)
        keep = w.after_ms if side == 0 else w.before_ms  # how long it waits for a partner
        wait = w.before_ms if side == 0 else w.after_ms  # how long a partner waits for it
        joiner, wm = self.joiner, self.watermark
        # each record against the watermark before it (not the batch's): operators.event_time
        et = self.event_time
        marks = et.marks([r[4] for r in rows], wm) if et.active else None
        enc, loads, dumps = KEY.serialize, pickle.loads, pickle.dumps
        out: Rows = []
        o = None
        null_keys = late = 0
        try:
            for i, (k, v, t, h, o) in enumerate(rows):
                if k is None:
                    null_keys += 1
                    continue
                if marks is not None:
                    wm = marks[i]
                if t + keep + w.grace_ms < wm:  # inclusive window end: a record at wm is on time
                    late += 1
                    continue
                kb = enc(k)
                assert kb is not None
                matched = False
                for ts, raw in list(theirs.fetch(kb, t - lo, t + hi)):
                    if ts + wait + w.grace_ms < wm:
                        continue  # its window closed before this record (it leaves at the end)
                    entries = loads(raw)
                    for e in entries:
                        out.append(
                            (
                                k,
                                joiner(v, e[0]) if side == 0 else joiner(e[0], v),  # type: ignore[operator]
                                max(t, ts),
                                h,
                                o,
                            )
                        )
                        e[1] = True
                    matched = True
                    theirs.put(kb, ts, dumps(entries, protocol=5))
                prev = mine.get(kb, t)
                entries = [] if prev is None else loads(prev)
                entries.append([v, matched, k])
                mine.put(kb, t, dumps(entries, protocol=5))
        except Exception as e:
            raise ProcessingError(f"{type(e).__name__}: {e}", step=self.step, offset=o) from e
        finally:
            self.drops.add(self.step, "null_key", null_keys)
            self.late_records += late
            self.drops.add(self.step, "late", late)
        push(self.children, out)

    def _join_unmatched(self, side: int, v: Any) -> Any:
        try:
            return self.joiner(v, None) if side == 0 else self.joiner(None, v)  # type: ignore[operator]
        except Exception as e:
            raise ProcessingError(
                f"{type(e).__name__} joining an unmatched record: {e}", step=self.step
            ) from e

    def on_watermark(self, wm: int) -> None:
        """Drop buffered records whose window closed; emit the unmatched ones of outer sides."""
        if wm <= self.watermark:
            return
        self.watermark = wm
        w = self.win
        out: Rows = []
        for side, keep, outer in (
            (0, w.after_ms, self.how in ("left", "outer")),
            (1, w.before_ms, self.how == "outer"),
        ):
            store = self.stores[side]
            last = wm - keep - w.grace_ms - 1  # t + keep + grace < wm: the window has closed
            if outer:
                for _kb, t, raw in list(store.fetch_all(_MIN, last)):
                    for v, matched, k in pickle.loads(raw):
                        if not matched:
                            out.append((k, self._join_unmatched(side, v), t, (), -1))
            store.expire(last + 1)
        out.sort(key=lambda r: r[2])
        push(self.children, out)


class TableTableJoinProcessor:
    def __init__(
        self,
        node: plan.TableTableJoin,
        left: Getter,
        right: Getter,
        children: list[Processor],
        drops: Drops | None = None,
    ) -> None:
        self.step = node.step
        self.drops = drops if drops is not None else Drops()
        self.joiner = node.joiner.obj
        self.how = node.how
        self.getters = (left, right)
        self.children = children
        self.left = Port(lambda rows: self._side(rows, 0))
        self.right = Port(lambda rows: self._side(rows, 1))

    def _side(self, rows: Rows, side: int) -> None:
        other, joiner, how = self.getters[1 - side], self.joiner, self.how
        out: Rows = []
        o = None
        null_keys = 0
        try:
            for k, v, t, h, o in rows:
                if k is None:  # (a table has no null key; a join cannot look one up)
                    null_keys += 1
                    continue
                w = other(k)
                lv, rv = (v, w) if side == 0 else (w, v)
                if (
                    (how == "inner" and (lv is None or rv is None))
                    or (how == "left" and lv is None)
                    or (lv is None and rv is None)
                ):
                    out.append((k, None, t, h, o))  # no longer (or never) a joined row
                else:
                    out.append((k, joiner(lv, rv), t, h, o))  # type: ignore[operator]
        except Exception as e:
            raise ProcessingError(f"{type(e).__name__}: {e}", step=self.step, offset=o) from e
        finally:
            self.drops.add(self.step, "null_key", null_keys)
        push(self.children, out)


__all__ = ["Port", "StreamStreamJoinProcessor", "TableTableJoinProcessor"]
