"""Sliding windows: every window of ``time_difference`` ms that some record starts or ends.

The store keeps the records (per key and event time); a window's aggregate is computed from
them when it is emitted (``emit="update"``: the window ending at each new record; ``"final"``:
each window once its ``end + 1 + grace`` has passed the watermark). Records no open window can
contain are dropped.
"""

from __future__ import annotations

import pickle
from typing import Any

from operators.base import Rows
from operators.windowed_base import _MIN, WindowedAggregateProcessor
from state.window import WindowStore
from streams.core.serde import KEY
from streams.plan.windows import Sliding

_dumps = pickle.dumps
_loads = pickle.loads


class SlidingWindowsProcessor(WindowedAggregateProcessor):
    """Sliding windows over a :class:`WindowStore` of records (a list per key and time)."""

    spec: Sliding
    store: WindowStore

    window_types = (Sliding,)
    store_type = WindowStore

    def _aggregate(self, rows: Rows) -> tuple[Rows, Rows]:
        wm, store = self.watermark, self.store
        d, grace = self.spec.time_difference_ms, self.spec.grace_ms
        enc = KEY.serialize
        late: Rows = []
        out: Rows = []
        marks = self._marks(rows)  # (None: every record against ``wm``)
        nulls = 0
        for i, row in enumerate(rows):
            k, v, t, h, o = row
            if k is None:
                nulls += 1
                continue
            if marks is not None and marks[i] > wm:
                # the records before this one moved the watermark: windows close here, as
                # when records come one at a time
                wm = marks[i]
                self.on_watermark(wm)
            if t + d + 1 + grace <= wm:  # every window that could hold it has closed
                late.append(row)
                continue
            kb = enc(k)
            assert kb is not None
            raw = store.get(kb, t)
            vals = [] if raw is None else _loads(raw)
            vals.append(v)
            store.put(kb, t, _dumps(vals, protocol=5))
            if self.emit == "update":  # the window ending at the record: "as of this record"
                acc = self._init()
                for _, raw in store.fetch(kb, t - d, t):
                    for x in _loads(raw):
                        acc = self._add(acc, x)
                out.append((k, self._result(acc, t - d, t), t, h, o))
        self._null_keys(nulls)
        return out, late

    def _close(self, old: int, wm: int) -> Rows:
        """Emit (``final``) the windows whose ``end + 1 + grace`` the watermark just passed,
        then drop records no open window can contain."""
        store = self.store
        d, grace = self.spec.time_difference_ms, self.spec.grace_ms
        lo_end = max(old - grace, _MIN + 2 * d + 2)  # windows ending in [lo_end, hi_end] close
        hi_end = wm - grace - 1
        out: Rows = []
        if self.emit == "final" and hi_end >= lo_end:
            by_key: dict[bytes, list[tuple[int, list[Any]]]] = {}
            for kb, t, raw in store.fetch_all(lo_end - 2 * d - 1, hi_end):
                by_key.setdefault(kb, []).append((t, _loads(raw)))
            dec = KEY.deserialize
            closing: list[tuple[int, bytes, int]] = []
            for kb, recs in by_key.items():
                times = [t for t, _ in recs]
                wins = {(t - d, t) for t in times if lo_end <= t <= hi_end}
                for t in times:
                    e = t + 1 + d
                    if lo_end <= e <= hi_end and any(t < r <= e for r in times):
                        wins.add((t + 1, e))
                closing.extend((e, kb, s) for s, e in wins)
            for e, kb, s in sorted(closing):
                acc = self._init()
                for t, vals in by_key[kb]:
                    if s <= t <= e:
                        for v in vals:
                            acc = self._add(acc, v)
                out.append((dec(kb), self._result(acc, s, e), e, (), -1))
        store.expire(wm - d - grace)
        return out


__all__ = ["SlidingWindowsProcessor"]
