"""Sinks: serialize rows and hand them to the collector with a partition.

User topics are partitioned like Kafka's default partitioner (murmur2 of the serialized key).
Repartition topics are partitioned by the key's *canonical* bytes (UTF-8 for ``str``, 8-byte
big-endian for ``int``, raw ``bytes``), so a stream re-keyed by a string lands on the same
partition numbers as a user topic keyed with the ``STR`` serde and joins line up.

>>> canonical_key_bytes("a"), canonical_key_bytes(1)
(b'a', b'\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x01')
"""

from __future__ import annotations

import pickle
import struct
from collections.abc import Callable
from typing import Any

from operators.base import Collector, Rows
from operators.columnar import run_rows
from operators.event_time import EventTime
from streams.core.errors import SerializationError
from streams.core.partitioner import Partitioner
from streams.core.records import OutRecord
from streams.core.serde import (
    JSON,
    Discard,
    FnSerde,
    Serde,
    check_json_batch,
    json_encode_unchecked,
)
from streams.core.wire import (
    CONTROL_HEADER,
    MIN_WATERMARK,
    RECORD_WM_HEADER,
    encode_control,
)

_LONG = struct.Struct(">q")


def canonical_key_bytes(k: Any) -> bytes:
    """The bytes a key is partitioned by on internal topics."""
    if isinstance(k, str):
        return k.encode()
    if isinstance(k, bytes):
        return k
    if isinstance(k, int) and not isinstance(k, bool) and -(2**63) <= k < 2**63:
        return _LONG.pack(k)
    return pickle.dumps(k, protocol=5)


class SinkProcessor:
    """Writes rows to ``topic``. ``by_canonical_key`` selects the internal-topic partitioning."""

    def __init__(
        self,
        step: str,
        topic: str,
        key_serde: Serde,
        value_serde: Serde,
        collector: Collector,
        task_partition: int,
        *,
        by_canonical_key: bool = False,
        arrow: bool = False,
    ) -> None:
        self.step, self.topic = step, topic
        self.key_serde, self.value_serde = key_serde, value_serde
        self.collector = collector
        self.task_partition = task_partition
        self.by_canonical_key = by_canonical_key
        self._partitioner = Partitioner()
        self._n: int | None = None
        self._encode = _batch_encoder(key_serde, value_serde)
        self.task_count = 1  # tasks of this sub-topology (set by the task: control records)
        #: a repartition topic read columnar: columnar batches go as Arrow IPC messages
        self.arrow = arrow
        #: a repartition topic read by timed steps: the task's per-record watermarks, carried
        #: downstream by the records (a header; an Arrow message's ``__wm`` column), so the
        #: reading task judges each record as this one did, whatever the batch boundaries
        self.event_time: EventTime | None = None

    @property
    def accepts_columnar(self) -> bool:
        """JSON values encode from Arrow columns (:mod:`operators.arrow_json`); a blackhole
        takes anything."""
        if isinstance(self.value_serde, Discard) or self.arrow:
            return True
        return self.value_serde.name == "json" and isinstance(self.key_serde, FnSerde)

    def process_columnar(self, batch: Any) -> None:
        from operators.arrow_json import encodable, encode_values

        if isinstance(self.value_serde, Discard):
            self.value_serde.count += batch.n
            return
        if self.arrow:
            self._send_arrow(batch, self._marks_array(batch))
            return
        if not encodable(batch):
            run_rows(batch, self.process)
            return
        keys, ts, hs, _ = batch.meta()
        try:
            vbs = encode_values(batch)
            ke = self.key_serde.serialize
            kbs = [None] * len(keys) if keys.count(None) == len(keys) else [ke(k) for k in keys]
        except Exception:  # the row path finds and names the record
            run_rows(batch, self.process)
            return
        wm = self._marks_array(batch)
        marks = None if wm is None else wm.to_pylist()
        self._send(keys, list(zip(kbs, vbs, ts, hs, strict=True)), batch.to_rows, marks)

    def process(self, rows: Rows) -> None:
        if isinstance(self.value_serde, Discard):
            self.value_serde.count += len(rows)
            return
        try:
            recs = self._encode(rows)
        except Exception as e:
            raise self._error(rows, e) from e
        marks = self._marks([r[4] for r in rows]) if self.event_time is not None else None
        if self._n == 1 and marks is None:
            self.collector.send_batch(self.topic, 0, recs)
            return
        self._send([r[0] for r in rows], recs, lambda: rows, marks)

    def _marks(self, offsets: list[int]) -> list[int] | None:
        et = self.event_time
        if et is None or not et.active:
            return None
        return et.marks(offsets, MIN_WATERMARK)

    def _marks_array(self, batch: Any) -> Any:
        """The watermark each record of a columnar batch was judged against here (an Arrow
        array; None: no marks to tell): the ones it carries, else by its offsets."""
        et = self.event_time
        if et is None or not et.active:
            return None
        return et.batch_marks(batch, MIN_WATERMARK)

    def _send(
        self,
        keys: list[Any],
        recs: list[OutRecord],
        rows: Callable[[], Rows],
        marks: list[int] | None = None,
    ) -> None:
        n = self._n
        if n is None:
            n = self._n = self.collector.partitions(self.topic)
        if marks is not None:
            self._send_marked(keys, recs, marks, n)
            return
        if n == 1:
            self.collector.send_batch(self.topic, 0, recs)
            return
        try:
            part = self._partitioner.partition
            canon, mine = self.by_canonical_key, self.task_partition % n
            buckets: dict[int, list[OutRecord]] = {}
            for k, rec in zip(keys, recs, strict=True):
                kb = rec[0]
                if k is None:
                    p = mine  # keeps a null-keyed stream's order per task
                elif canon:
                    p = part(canonical_key_bytes(k), n)
                else:
                    p = part(kb, n)  # type: ignore[arg-type]
                b = buckets.get(p)
                if b is None:
                    b = buckets[p] = []
                b.append(rec)
        except Exception as e:
            raise self._error(rows(), e) from e
        for p, batch in buckets.items():
            self.collector.send_batch(self.topic, p, batch)

    def _send_marked(
        self, keys: list[Any], recs: list[OutRecord], marks: list[int], n: int
    ) -> None:
        """:meth:`_send`, each record carrying the watermark it was judged against here (header
        :data:`RECORD_WM_HEADER`): records of one batch may reach the topic out of offset
        order (branches merged), so the reader takes each record's own, not the last seen."""
        part, canon, mine = (
            self._partitioner.partition,
            self.by_canonical_key,
            self.task_partition % n,
        )
        count, me = self.task_count, self.task_partition
        header = (RECORD_WM_HEADER, b"")
        alone: tuple[tuple[str, bytes], ...] = (header,)
        last: int | None = None
        buckets: dict[int, list[OutRecord]] = {}
        for k, rec, m in zip(keys, recs, marks, strict=True):
            if n == 1:
                p = 0
            elif k is None:
                p = mine
            else:
                p = part(canonical_key_bytes(k) if canon else rec[0], n)  # type: ignore[arg-type]
            b = buckets.get(p)
            if b is None:
                b = buckets[p] = []
            if m != last:  # (one header per distinct watermark, shared by its records)
                header, last = (RECORD_WM_HEADER, encode_control(me, count, m)), m
                alone = (header,)
            h = rec[3]
            b.append((rec[0], rec[1], rec[2], (*h, header) if h else alone))
        for p, batch in buckets.items():
            self.collector.send_batch(self.topic, p, batch)

    def _send_arrow(self, batch: Any, wm: Any) -> None:
        """Each partition's records of the batch as Arrow IPC messages (see
        :mod:`operators.arrow_ipc`), with the watermarks ``wm`` they were judged against (an
        int64 array; None: none to tell); records Arrow cannot carry exactly go one by one."""
        import pyarrow as pa  # type: ignore[import-untyped]

        from operators import arrow_ipc

        n = self._n
        if n is None:
            n = self._n = self.collector.partitions(self.topic)
        me, count = self.task_partition, self.task_count
        try:
            keys, ts, cols = arrow_ipc.parts(batch)
            parts: dict[int, list[int] | None]
            if n == 1:
                parts = {0: None}
            else:  # each key's partition once per batch, records in their order
                part, mine = self._partitioner.partition, self.task_partition % n
                of: dict[Any, int] = {}
                idx: dict[int, list[int]] = {}
                for i, k in enumerate(keys.to_pylist()):
                    p = of.get(k)
                    if p is None:
                        p = of[k] = mine if k is None else part(canonical_key_bytes(k), n)
                    idx.setdefault(p, []).append(i)
                parts = dict(idx)
            out: list[tuple[int, list[OutRecord]]] = []
            for p, ix in parts.items():
                t = max(ts) if ix is None else max(ts[i] for i in ix)
                pos = None if ix is None else pa.array(ix, pa.int64())
                recs: list[OutRecord] = []
                for msg, hi in arrow_ipc.encode_marked(keys, ts, cols, pos, wm):
                    hs: tuple[tuple[str, bytes], ...] = arrow_ipc.HEADERS
                    if hi is not None:
                        hs = (*hs, (RECORD_WM_HEADER, encode_control(me, count, hi)))
                    recs.append((None, msg, t, hs))
                out.append((p, recs))
        except Exception:  # (mixed or nested keys, big ints, headers): record by record
            run_rows(batch, self.process)
            return
        for p, recs in out:
            self.collector.send_batch(self.topic, p, recs)

    def on_watermark(self, wm: int) -> None:
        """Announce this task's watermark to every partition of the (repartition) topic."""
        n = self._n if self._n is not None else self.collector.partitions(self.topic)
        self._n = n
        ctrl = ((CONTROL_HEADER, encode_control(self.task_partition, self.task_count, wm)),)
        for p in range(n):
            self.collector.send_batch(self.topic, p, [(None, None, wm, ctrl)])

    def _error(self, rows: Rows, exc: Exception) -> SerializationError:
        """Find the first row that does not serialize (the slow path, only on failure)."""
        for k, v, _t, _h, o in rows:
            try:
                self.key_serde.serialize(k)
                self.value_serde.serialize(v)
            except Exception as e:
                return SerializationError(
                    f"could not serialize the record for topic '{self.topic}': "
                    f"{type(e).__name__}: {e}",
                    step=self.step,
                    offset=o,
                )
        return SerializationError(f"writing to '{self.topic}' failed: {exc}", step=self.step)


def _encode_expr(serde: Serde, var: str, ns: dict[str, Any], name: str) -> str:
    if isinstance(serde, FnSerde):  # inline the None check: one call per field, not two
        ns.setdefault(name, serde.encode)
        return f"None if {var} is None else {name}({var})"
    ns[name] = serde.serialize
    return f"{name}({var})"


def _batch_encoder(key_serde: Serde, value_serde: Serde) -> Callable[[Rows], list[OutRecord]]:
    """A generated ``rows -> [(key_bytes, value_bytes, timestamp, headers), ...]``. The JSON
    serde's per-value set check runs once over the batch (:func:`check_json_batch`)."""
    ns: dict[str, Any] = {"_check_json": check_json_batch}
    checks = ""
    for i, (serde, name) in enumerate(((key_serde, "_ke"), (value_serde, "_ve"))):
        if serde is JSON:
            ns[name] = json_encode_unchecked
            checks += f"    _check_json([r[{i}] for r in out], [r[{i}] for r in rows])\n"
    ke = _encode_expr(key_serde, "k", ns, "_ke")
    ve = _encode_expr(value_serde, "v", ns, "_ve")
    src = (
        f"def _enc(rows):\n    out = [({ke}, {ve}, t, h) for k, v, t, h, o in rows]\n"
        f"{checks}    return out\n"
    )
    exec(compile(src, "<sink encoder>", "exec"), ns)
    fn: Callable[[Rows], list[OutRecord]] = ns["_enc"]
    return fn


__all__ = ["SinkProcessor", "canonical_key_bytes"]
