"""Session windows: a key's records at most ``gap`` ms apart (inclusive) form one session.

A record at ``t`` merges every session of its key with ``end >= t - gap`` and
``start <= t + gap``; a session ``[start, end]`` (both inclusive, ``end`` = its last event)
closes when the watermark reaches ``end + gap + grace``. Sessions and their accumulators live
in a :class:`SessionStore`.
"""

from __future__ import annotations

import pickle
from typing import Any

from operators.base import Rows
from operators.windowed_base import WindowedAggregateProcessor
from state.session import SessionStore
from streams.core.serde import KEY
from streams.plan.windows import Session

_dumps = pickle.dumps
_loads = pickle.loads


class SessionWindowsProcessor(WindowedAggregateProcessor):
    """Session windows over a :class:`SessionStore`."""

    spec: Session
    store: SessionStore

    window_types = (Session,)
    store_type = SessionStore

    def _aggregate(self, rows: Rows) -> tuple[Rows, Rows]:
        wm, store = self.watermark, self.store
        gap, grace = self.spec.gap_ms, self.spec.grace_ms
        enc = KEY.serialize
        changed: dict[tuple[bytes, int, int], list[Any]] = {}
        keys: dict[bytes, Any] = {}
        late: Rows = []
        last_meta: tuple[Any, int] = ((), 0)
        marks = self._marks(rows)  # (None: every record against ``wm``)
        nulls = 0
        for i, row in enumerate(rows):
            k, v, t, h, o = row
            if k is None:
                nulls += 1
                continue
            if marks is not None:
                wm = marks[i]
            kb = enc(k)
            assert kb is not None
            keys[kb] = k
            start, end, acc = t, t, self._add(self._init(), v)
            merged = []
            for s, e, raw in list(store.find_sessions(kb, t - gap, t + gap)):
                if e + gap + grace <= wm:
                    continue  # closed before this record came (it leaves when the batch ends)
                merged.append((s, e))
                other = changed.pop((kb, s, e), None)
                acc = self._merge(other if other is not None else _loads(raw), acc)
                start, end = min(start, s), max(end, e)
            if end + gap + grace <= wm:
                late.append(row)
                continue
            for s, e in merged:
                store.remove(kb, s, e)
            store.put(kb, start, end, _dumps(acc, protocol=5))
            changed[(kb, start, end)] = acc
            last_meta = (h, o)
        self._null_keys(nulls)
        out: Rows = []
        if self.emit == "update":
            h, o = last_meta
            for (kb, s, e), acc in changed.items():
                out.append((keys[kb], self._result(acc, s, e), e, h, o))
        return out, late

    def _close(self, old: int, wm: int) -> Rows:
        store = self.store
        before = wm - self.spec.gap_ms - self.spec.grace_ms + 1
        out: Rows = []
        if self.emit == "final":
            dec = KEY.deserialize
            for kb, s, e, raw in list(store.fetch_all_ending_before(before)):
                out.append((dec(kb), self._result(_loads(raw), s, e), e, (), -1))
        store.expire(before)
        return out


__all__ = ["SessionWindowsProcessor"]
