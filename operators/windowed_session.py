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
_MIN, _MAX = -(1 << 62), 1 << 62


def _start_end(x: list[Any]) -> tuple[int, int]:
    return x[0], x[1]


class SessionWindowsProcessor(WindowedAggregateProcessor):
    """Session windows over a :class:`SessionStore`."""

    spec: Session
    store: SessionStore

    window_types = (Session,)
    store_type = SessionStore

    def _aggregate(self, rows: Rows) -> tuple[Rows, Rows]:
        """Merge each record into its key's sessions. A batch works on the touched keys'
        sessions in memory (read from the store once per key, written back once at the end:
        a batch of records of one session costs one store update, not one per record)."""
        wm = self.watermark
        gap, grace = self.spec.gap_ms, self.spec.grace_ms
        enc, store = KEY.serialize, self.store
        init, add, merge = self._init, self._add, self._merge
        #: per key: its sessions [start, end, acc or None (not loaded), raw, dirty]
        live: dict[bytes, list[list[Any]]] = {}
        gone: set[tuple[bytes, int, int]] = set()  # sessions of the store merged away
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
            sessions = live.get(kb)
            if sessions is None:
                keys[kb] = k
                sessions = live[kb] = [
                    [s, e, None, raw, False] for s, e, raw in store.find_sessions(kb, _MIN, _MAX)
                ]
            lo, hi = t - gap, t + gap
            hit = [x for x in sessions if x[1] >= lo and x[0] <= hi and x[1] + gap + grace > wm]
            if not hit and t + gap + grace <= wm:
                late.append(row)
                continue
            acc, start, end = add(init(), v), t, t
            if hit:
                hit.sort(key=_start_end)
                for x in hit:
                    other = x[2] if x[2] is not None else _loads(x[3])
                    acc = merge(other, acc)
                    start, end = min(start, x[0]), max(end, x[1])
                    if x[3] is not None:
                        gone.add((kb, x[0], x[1]))  # (in the store: removed at the end)
                ids = {id(x) for x in hit}
                sessions[:] = [x for x in sessions if id(x) not in ids]
            sessions.append([start, end, acc, None, True])
            last_meta = (h, o)
        self._null_keys(nulls)
        for kb, s, e in gone:
            store.remove(kb, s, e)
        out: Rows = []
        update = self.emit == "update"
        h, o = last_meta
        for kb, sessions in live.items():
            for s, e, acc, _, dirty in sessions:
                if dirty:
                    store.put(kb, s, e, _dumps(acc, protocol=5))
                    if update:
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
