"""Session windows: a key's records at most ``gap`` ms apart (inclusive) form one session.

A record at ``t`` merges every session of its key with ``end >= t - gap`` and
``start <= t + gap``; a session ``[start, end]`` (both inclusive, ``end`` = its last event)
closes when the watermark reaches ``end + gap + grace``. Sessions and their accumulators live
in a :class:`SessionStore`.
"""

from __future__ import annotations

import pickle
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from operators.base import Rows
from operators.columnar import run_rows
from operators.expr_arrow import to_array
from operators.windowed_base import WindowedAggregateProcessor
from state.session import SessionStore
from streams.core.errors import ProcessingError
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

    # -- whole Arrow batches (operators.windowed_session_arrow) -------------------------------
    def _init_kind(self, node: Any, objects: Any) -> None:
        from operators.windowed_session_arrow import session_specs

        self._specs = session_specs(node) if self._execution != "row" else None

    @property
    def accepts_columnar(self) -> bool:
        return self._specs is not None

    def process_columnar(self, batch: Any) -> None:
        if batch.n < self._batch_min or not self._micro_batch(batch):
            run_rows(batch, self.process)

    def _micro_batch(self, batch: Any) -> bool:
        """The batch through :func:`micro_sessions`; False (nothing done) where it can't go:
        a record not after its watermark (less the grace), whose result can depend on the
        order (a session it reaches may have closed), or what Arrow could answer differently.

        (A record after its watermark less the grace is not late, and no session within the
        gap of it has closed: each session it reaches ends at or after ``t - gap``, so closes
        at ``t + grace`` or later. Then sessions are the batch's and the store's records
        connected by gaps of at most ``gap``, in any order.)"""
        from operators.windowed_session_arrow import micro_sessions

        assert self._specs is not None
        needed = frozenset().union(*(e.columns() for _, e in self._specs if e is not None))
        if batch.scalar is not None and needed:
            return False
        n, grace = batch.n, self.spec.grace_ms
        wm = self._batch_marks(batch)
        b = batch.copy()
        b.ensure(needed)
        keys, ts_list, _, _ = b.meta()
        ts = pa.array(ts_list, pa.int64())
        if isinstance(wm, int):
            if min(ts_list) + grace <= wm:
                return False
        elif not pc.all(pc.greater(pc.add(ts, grace), wm)).as_py():
            return False
        cols = {}
        for name in needed:
            c = b.get(name)
            cols[name] = pa.nulls(n) if c is None else to_array(c, n)
        karr = to_array(b.key if b.key is not None else pa.array(keys), n)
        try:
            micros, nulls = micro_sessions(self._specs, karr, ts, cols, n, self.spec.gap_ms)
        except Exception:  # Arrow could differ here: the row path decides (and reports)
            return False
        self._null_keys(nulls)
        try:
            self._merge_sessions(micros)
        except Exception as e:
            raise ProcessingError(f"{type(e).__name__}: {e}", step=self.step) from e
        return True

    def _merge_sessions(self, micros: list[Any]) -> None:
        """Merge a batch's own sessions into the store's, as its records would (see
        :meth:`_micro_batch`: none late, none reaching a closed session)."""
        gap = self.spec.gap_ms
        enc, store = KEY.serialize, self.store
        init, merge = self._init, self._merge
        live: dict[bytes, list[list[Any]]] = {}
        gone: set[tuple[bytes, int, int]] = set()
        for m in micros:
            kb = enc(m.key)
            assert kb is not None
            sessions = live.get(kb)
            if sessions is None:
                sessions = live[kb] = [
                    [s, e, None, raw, False] for s, e, raw in store.find_sessions(kb, _MIN, _MAX)
                ]
            lo, hi = m.start - gap, m.end + gap
            hit = [x for x in sessions if x[1] >= lo and x[0] <= hi]
            acc = merge(init(), m.partial)
            _absorb(kb, sessions, hit, acc, m.start, m.end, merge, gone)
        for kb, s, e in gone:
            store.remove(kb, s, e)
        for kb, sessions in live.items():
            for s, e, acc, _, dirty in sessions:
                if dirty:
                    store.put(kb, s, e, _dumps(acc, protocol=5))

    # -- records ----------------------------------------------------------------------------

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
            _absorb(kb, sessions, hit, add(init(), v), t, t, merge, gone)
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


def _absorb(
    kb: bytes,
    sessions: list[list[Any]],
    hit: list[list[Any]],
    acc: Any,
    start: int,
    end: int,
    merge: Any,
    gone: set[tuple[bytes, int, int]],
) -> None:
    """Merge the sessions ``hit`` of key ``kb`` into ``acc`` over ``[start, end]``: they leave
    ``sessions`` (those read from the store go to ``gone``, removed at the end of the batch)
    and the merged session joins it, dirty."""
    if hit:
        hit.sort(key=_start_end)
        for x in hit:
            other = x[2] if x[2] is not None else _loads(x[3])
            acc = merge(other, acc)
            start, end = min(start, x[0]), max(end, x[1])
            if x[3] is not None:
                gone.add((kb, x[0], x[1]))
        ids = {id(x) for x in hit}
        sessions[:] = [x for x in sessions if id(x) not in ids]
    sessions.append([start, end, acc, None, True])


__all__ = ["SessionWindowsProcessor"]
