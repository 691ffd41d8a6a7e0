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
The records of one message share its offset.

On a topic whose readers judge lateness, each record also carries the watermark its writer
judged it against (``__wm``, int64), and the message the header
:data:`streams.core.wire.RECORD_WM_HEADER` (its writer and the largest of them): the reader
judges each record as if it came alone, after a control record of that watermark (see
:mod:`operators.event_time`). A message without ``__wm`` (a writer without marks, or an older
one) leaves its records to the control records before it. Both columns are stripped before any
step sees the batch.

>>> import pyarrow as pa
>>> from operators.columnar import ColumnarBatch
>>> b = ColumnarBatch({"x": pa.array([1, 2])}, 2, keys=[None] * 2, ts=[5, 7], headers=[()] * 2,
...     offsets=[0, 1])
>>> b.key = pa.array(["a", "b"])
>>> (msg,) = encode(*parts(b), None)
>>> decode([msg], [9]).to_rows()
[('a', {'x': 1}, 5, (), 9), ('b', {'x': 2}, 7, (), 9)]
>>> (msg, top), = encode_marked(*parts(b), None, pa.array([3, 4]))
>>> top, decode_run([msg], [9])[1][0].to_pylist()
(4, [3, 4])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from operators.columnar import ColumnarBatch
from operators.expr_arrow import Unsupported, kind, to_array
from streams.core.wire import ARROW_HEADER

HEADERS = ((ARROW_HEADER, b"1"),)
_KEY, _TS, _WM = "__key", "__ts", "__wm"
_RESERVED = (_KEY, _TS, _WM)
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
    if any(name in cols for name in _RESERVED):
        raise Unsupported(f"a field named one of {_RESERVED}")
    return karr, ts, cols


def encode(keys: Any, ts: list[int], cols: dict[str, Any], positions: Any) -> list[bytes]:
    """IPC messages of the records at ``positions`` (an int array; None: all)."""
    return [m for m, _ in encode_marked(keys, ts, cols, positions, None)]


def encode_marked(
    keys: Any, ts: list[int], cols: dict[str, Any], positions: Any, wm: Any
) -> list[tuple[bytes, int | None]]:
    """:func:`encode`, with each record's watermark ``wm`` (an int64 array of all records, or
    None: none) as the ``__wm`` column: ``(message, its largest watermark or None)``."""
    arrays = [keys, pa.array(ts, pa.int64()), *cols.values()]
    names = [_KEY, _TS, *cols]
    if wm is not None:
        arrays.append(wm)
        names.append(_WM)
    if positions is not None:
        arrays = [a.take(positions) for a in arrays]
    rb = pa.RecordBatch.from_arrays(arrays, names=names)
    n = rb.num_rows
    step = max(1, n * MAX_MESSAGE_BYTES // max(rb.nbytes, 1))
    out = []
    for lo in range(0, n, step):
        part = rb.slice(lo, step)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, rb.schema) as w:
            w.write_batch(part)
        top = None if wm is None else pc.max(part.column(_WM)).as_py()
        out.append((sink.getvalue().to_pybytes(), top))
    return out


def decode(values: Sequence[bytes], offsets: Sequence[int]) -> ColumnarBatch:
    """One columnar batch of the records of these messages, in order."""
    return decode_run(values, offsets)[0]


def decode_run(
    values: Sequence[bytes], offsets: Sequence[int]
) -> tuple[ColumnarBatch, list[Any], list[int]]:
    """:func:`decode`, with each message's carried watermarks (an int64 array; None: the
    message has none) and its number of records."""
    return _decode_tables([pa.ipc.open_stream(v).read_all() for v in values], offsets)


def decode_runs(
    values: Sequence[bytes], offsets: Sequence[int]
) -> list[tuple[ColumnarBatch, list[Any], list[int], int]]:
    """:func:`decode_run` of each stretch of messages with one schema, in order (writers of
    different fields share a topic, as the sides of a merge): ``(batch, carried watermarks,
    lengths, number of messages)``."""
    tables = [pa.ipc.open_stream(v).read_all() for v in values]
    out = []
    i = 0
    while i < len(tables):
        j = i + 1
        while j < len(tables) and tables[j].schema.equals(tables[i].schema):
            j += 1
        out.append((*_decode_tables(tables[i:j], offsets[i:j]), j - i))
        i = j
    return out


def _decode_tables(
    batches: list[Any], offsets: Sequence[int]
) -> tuple[ColumnarBatch, list[Any], list[int]]:
    table = pa.concat_tables(batches) if len(batches) > 1 else batches[0]
    n = table.num_rows
    lengths = [t.num_rows for t in batches]
    offs = [o for k, o in zip(lengths, offsets, strict=True) for _ in range(k)]
    wms = [t.column(_WM).combine_chunks() if _WM in t.column_names else None for t in batches]
    names = [c for c in table.column_names if c not in _RESERVED]
    cols = {c: table.column(c).combine_chunks() for c in names}
    b = ColumnarBatch(cols, n, keys=[None] * n, ts=table.column(_TS).to_pylist(), offsets=offs)
    b.headers = [()] * n
    b.key = table.column(_KEY).combine_chunks()
    return b, wms, lengths


__all__ = [
    "ARROW_HEADER",
    "HEADERS",
    "MAX_MESSAGE_BYTES",
    "decode",
    "decode_run",
    "decode_runs",
    "encode",
    "encode_marked",
    "is_arrow",
    "parts",
]
