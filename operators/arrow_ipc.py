"""Columnar micro-batches through repartition topics: one Arrow IPC message per batch slice.

Where both sides of a repartition topic run columnar (a columnar chain writes it, for example
``key_by`` on Arrow), pickling each record and unpickling it on the other side is most of the
cost of the hop (measured on Nexmark q5: about a third of the run). Instead the writer sends, per
target partition, the batch's records as Arrow IPC stream messages: the value columns plus the
key (``__key``) and the event time (``__ts``). The header :data:`ARROW_HEADER` marks them, so a
reader tells them from per-record (pickled) messages, which a writer still sends for batches
Arrow cannot carry exactly: keys that are not all strings or all integers, non-empty headers,
values that are not dicts of plain values with the same fields in the same order.

Partitioning is the per-record one: each record goes to the partition of its key's canonical
bytes (:func:`operators.sink.canonical_key_bytes`, murmur2), a null key to the writer's own.
Watermark control records are separate messages, as before. The records of one message share
its offset.

>>> import pyarrow as pa
>>> from operators.columnar import ColumnarBatch
>>> b = ColumnarBatch({"x": pa.array([1, 2])}, 2, keys=[None] * 2, ts=[5, 7], headers=[()] * 2,
...     offsets=[0, 1])
>>> b.key = pa.array(["a", "b"])
>>> (msg,) = encode(*parts(b), None)
>>> decode([msg], [9]).to_rows()
[('a', {'x': 1}, 5, (), 9), ('b', {'x': 2}, 7, (), 9)]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]

from operators.columnar import ColumnarBatch
from operators.expr_arrow import Unsupported, kind, to_array

ARROW_HEADER = "__streams_arrow"
"""Marks a repartition message that holds an Arrow IPC stream of records (its value)."""
HEADERS = ((ARROW_HEADER, b"1"),)
_KEY, _TS = "__key", "__ts"
MAX_MESSAGE_BYTES = 512 * 1024
"""Slices of a batch are at most about this big (Kafka's default message limit is 1 MB)."""


def is_arrow(headers: Any) -> bool:
    return bool(headers) and any(k == ARROW_HEADER for k, _ in headers)


def parts(batch: ColumnarBatch) -> tuple[Any, list[int], dict[str, Any]]:
    """The keys (one array), timestamps and value columns of a batch's records, exactly;
    raises (:class:`Unsupported`, Arrow's errors) where Arrow would not carry them exactly."""
    from operators.columnar import plain_array

    keys, ts, hs, _ = batch.meta()
    if any(hs):
        raise Unsupported("records with headers")
    if batch.key is not None:
        karr = to_array(batch.key, batch.n)
    else:
        karr = pa.array(keys)
    if kind(karr.type) not in ("str", "int", "null"):
        raise Unsupported(f"keys of type {karr.type}")  # (bools, floats, tuples: pickled)
    if batch.scalar is None and (batch.rows is None or batch.overlay is None):
        cols = batch.columns()  # the value is exactly the columns
    else:  # the original dicts (and computed fields): when all have the same fields, in order
        values = [r[1] for r in batch.to_rows()]
        if not all(isinstance(v, dict) for v in values):
            raise Unsupported("values that are not dicts")
        names = list(values[0]) if values else []
        if any(list(v) != names for v in values):
            raise Unsupported("values with different fields")
        cols = {n: plain_array([v[n] for v in values], n) for n in names}
    if _KEY in cols or _TS in cols:
        raise Unsupported(f"a field named {_KEY} or {_TS}")
    return karr, ts, cols


def encode(keys: Any, ts: list[int], cols: dict[str, Any], positions: Any) -> list[bytes]:
    """IPC messages of the records at ``positions`` (an int array; None: all)."""
    arrays = [keys, pa.array(ts, pa.int64()), *cols.values()]
    if positions is not None:
        arrays = [a.take(positions) for a in arrays]
    rb = pa.RecordBatch.from_arrays(arrays, names=[_KEY, _TS, *cols])
    n = rb.num_rows
    step = max(1, n * MAX_MESSAGE_BYTES // max(rb.nbytes, 1))
    out = []
    for lo in range(0, n, step):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, rb.schema) as w:
            w.write_batch(rb.slice(lo, step))
        out.append(sink.getvalue().to_pybytes())
    return out


def decode(values: Sequence[bytes], offsets: Sequence[int]) -> ColumnarBatch:
    """One columnar batch of the records of these messages, in order."""
    batches = [pa.ipc.open_stream(v).read_all() for v in values]
    table = pa.concat_tables(batches) if len(batches) > 1 else batches[0]
    n = table.num_rows
    offs = [o for t, o in zip(batches, offsets, strict=True) for _ in range(t.num_rows)]
    names = [c for c in table.column_names if c not in (_KEY, _TS)]
    cols = {c: table.column(c).combine_chunks() for c in names}
    b = ColumnarBatch(cols, n, keys=[None] * n, ts=table.column(_TS).to_pylist(), offsets=offs)
    b.headers = [()] * n
    b.key = table.column(_KEY).combine_chunks()
    return b


__all__ = ["ARROW_HEADER", "HEADERS", "MAX_MESSAGE_BYTES", "decode", "encode", "is_arrow", "parts"]
