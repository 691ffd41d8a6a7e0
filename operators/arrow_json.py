"""JSON values straight to and from Arrow: a fetched batch decodes into a
:class:`~operators.columnar.ColumnarBatch` (``pyarrow.json``, no Python dicts), and a sink
encodes a columnar batch's values with Arrow string kernels.

Decoding follows a schema: declared (fields not in it are dropped, a value of another type is an
error) or inferred from the first batch (later batches must match it: a new field or another type
is an error naming the topic and partition). Every record carries every field of the schema,
null when absent, in both execution modes (row mode converts the same batch to dicts).

Encoding gives the bytes msgspec would (the JSON serde): field order, ``null``, ``true``,
integers, strings escaped alike, floats in msgspec's spelling (Arrow's where they agree, in
``[1e-4, 1e10)``; msgspec's for the rest, and for nested values).

>>> import pyarrow as pa
>>> d = ArrowJsonDecoder(pa.schema([("a", pa.int64()), ("s", pa.string())]), None, "t", 0)
>>> b = d.decode([(None, b'{"a":1,"s":"x"}', 7, (), 0), (None, b'{"a":2,"z":0}', 8, (), 1)])
>>> b.to_rows()
[(None, {'a': 1, 's': 'x'}, 7, (), 0), (None, {'a': 2, 's': None}, 8, (), 1)]
>>> encode_values(b)
[b'{"a":1,"s":"x"}', b'{"a":2,"s":null}']
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import msgspec
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.json as pj  # type: ignore[import-untyped]

from operators.columnar import ColumnarBatch
from operators.expr_arrow import evaluate_arrow, kind, to_array
from streams.core.errors import ProcessingError, SerializationError
from streams.core.serde import Serde
from streams.core.types import RecordType
from streams.plan import nodes as plan
from streams.plan.expr import Expr

_enc = msgspec.json.encode
_BLOCK = 1 << 30  # (Arrow's block size is an int32)


class ArrowJsonDecoder:
    """Decodes one source partition's batches of JSON values into Arrow."""

    def __init__(
        self,
        schema: Any,
        timestamp: plan.Fn | None,
        topic: str,
        partition: int,
        key_serde: Serde | None = None,
        step: str = "",
        *,
        record: RecordType | None = None,
    ) -> None:
        self.inferred = isinstance(schema, str)
        #: typed values: absent fields take the class's defaults, required ones must be there,
        #: and rows leaving Arrow are objects of the class again
        self.record = record
        self._defaults, self._required = _typed_rules(record, schema)
        self.schema: pa.Schema | None = None if self.inferred else schema
        self.timestamp, self.topic, self.partition = timestamp, topic, partition
        self.key_serde, self.step = key_serde, step

    def _read(self, data: bytes, n: int) -> pa.Table:
        opts = pj.ParseOptions(
            explicit_schema=self.schema,
            unexpected_field_behavior="error" if self.inferred else "ignore",
        )
        # one block, one thread: the batch is already the unit of work, and Arrow's reader
        # threads cost CPU time (measured: the same parse, more CPU seconds) on a core that
        # other tasks share
        ropts = pj.ReadOptions(use_threads=False, block_size=min(max(len(data), 1 << 16), _BLOCK))
        table = pj.read_json(io.BytesIO(data), read_options=ropts, parse_options=opts)
        if table.num_rows != n:  # a value spanning lines
            opts.newlines_in_values = True
            table = pj.read_json(io.BytesIO(data), read_options=ropts, parse_options=opts)
        if table.num_rows != n:
            raise pa.ArrowInvalid(f"{n} values gave {table.num_rows} records")
        return table

    def decode(self, msgs: Sequence[Any]) -> ColumnarBatch:
        if isinstance(msgs[0], tuple):
            kbs, vbs, tss, hs, offs = (list(x) for x in zip(*msgs, strict=True))
        else:
            kbs = [m.key for m in msgs]
            vbs, tss = [m.value for m in msgs], [m.timestamp for m in msgs]
            hs, offs = [m.headers for m in msgs], [m.offset for m in msgs]
        n = len(vbs)
        where: dict[str, Any] = dict(topic=self.topic, partition=self.partition)
        if None in vbs:
            raise SerializationError(
                "a null value on a source with a schema", offset=offs[vbs.index(None)], **where
            )
        try:
            table = self._read(b"\n".join(vbs), n)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            which = "inferred from the first batch" if self.inferred else "declared"
            raise SerializationError(
                f"could not deserialize the value: the batch does not match the {which} "
                f"schema {self._schema_text()}: {e}",
                offset=offs[0],
                **where,
            ) from e
        if self.schema is None:
            self.schema = table.schema
        cols = {n: _one_array(c) for n, c in zip(table.column_names, table.columns, strict=True)}
        if self.record is not None:
            self._apply_record(cols, offs, where)
        if self.key_serde is None or kbs.count(None) == n:
            keys: list[Any] = [None] * n
        else:
            de = self.key_serde.deserialize
            keys = [None if k is None else de(k) for k in kbs]
        batch = ColumnarBatch(cols, n, keys=keys, ts=tss, headers=hs, offsets=offs)
        batch.record = self.record
        if self.timestamp is not None:
            try:
                batch.ts = self._timestamps(batch)
            except Exception as e:
                raise ProcessingError(
                    f"timestamp extraction failed: {type(e).__name__}: {e}", step=self.step, **where
                ) from e
        return batch

    def _apply_record(self, cols: dict[str, Any], offs: list[int], where: dict[str, Any]) -> None:
        for name, default in self._defaults.items():
            a = cols.get(name)
            if a is not None and a.null_count:
                cols[name] = pc.fill_null(a, pa.scalar(default, a.type))
        for name in self._required:
            a = cols.get(name)
            if a is not None and a.null_count:
                first = pc.index(pc.is_null(a), True).as_py()
                assert self.record is not None
                raise SerializationError(
                    f"could not deserialize the value: {self.record.name} requires field "
                    f"'{name}' (absent or null)",
                    offset=offs[first],
                    **where,
                )

    def conform(self, batch: ColumnarBatch) -> None:
        """Give a batch that arrived as Arrow the schema's fields, in its order and types
        (absent: null; others dropped), as decoding JSON would."""
        if self.schema is None:
            if self.inferred:
                self.schema = pa.schema([(n, batch.base[n].type) for n in batch.names])
            return
        batch.conform(self.schema)

    def _timestamps(self, batch: ColumnarBatch) -> list[int]:
        assert self.timestamp is not None
        return arrow_timestamps(self.timestamp, batch)

    def _schema_text(self) -> str:
        s = self.schema
        return (
            "(none yet)" if s is None else "{" + ", ".join(f"{f.name}: {f.type}" for f in s) + "}"
        )


def _one_array(c: pa.ChunkedArray) -> pa.Array:
    """A column as one array (the reader's one block: its chunk, without a copy)."""
    return c.chunk(0) if c.num_chunks == 1 else c.combine_chunks()


def _typed_rules(record: RecordType | None, schema: Any) -> tuple[dict[str, Any], list[str]]:
    """A record class's scalar defaults (to fill absent fields with) and its required fields
    that may not be null (annotations without ``None``), among ``schema``'s fields."""
    if record is None or schema is None or isinstance(schema, str):
        return {}, []
    names = set(schema.names)
    defaults = {
        f: d
        for f, d in record.defaults.items()
        if f in names and d is not None and isinstance(d, bool | int | float | str)
    }
    required = [
        f for f in record.required() if f in names and not _nullable(record.annotations.get(f))
    ]
    return defaults, required


def _nullable(t: Any) -> bool:
    import types
    import typing

    if t is None or t is type(None) or t is Any:
        return True
    if typing.get_origin(t) in (typing.Union, types.UnionType):
        return type(None) in typing.get_args(t)
    return False


def arrow_timestamps(timestamp: plan.Fn, batch: ColumnarBatch) -> list[int]:
    """The event times of a columnar batch's records, as the row decoder extracts them."""
    from operators.source import to_millis

    obj = timestamp.obj
    if isinstance(obj, Expr):
        arr = evaluate_arrow(obj, batch, batch.n)
        if kind(arr.type) == "int" and arr.null_count == 0:
            return list(arr.to_pylist())
        values = arr.to_pylist()
    else:
        values = [obj(v) for v in batch.values()]
    return [t if type(t) is int else to_millis(t) for t in values]


def _float_text(a: pa.Array) -> pa.Array:
    """msgspec's spelling of floats: Arrow's where they agree, msgspec's elsewhere."""
    absa = pc.abs(a)
    plain = pc.or_(pc.equal(a, 0.0), pc.and_(pc.greater_equal(absa, 1e-4), pc.less(absa, 1e10)))
    plain = pc.fill_null(plain, True)
    s = pc.replace_substring(pc.cast(a, pa.string()), "e+", "e")
    s = pc.replace_substring_regex(s, pattern=r"^(-?[0-9]+)$", replacement=r"\1.0")
    if not pc.all(plain).as_py():
        odd = pc.indices_nonzero(pc.invert(plain)).to_pylist()
        py = s.to_pylist()
        vals = a.to_pylist()
        for i in odd:
            py[i] = _enc(vals[i]).decode()
        s = pa.array(py, pa.string())
    return s


_CONTROL = r"[\x00-\x1f]"
_ESCAPE = r'[\x00-\x1f"\\]'


def _json_text(a: pa.Array) -> pa.Array:
    """Each value's JSON text (null -> ``null``)."""
    k = kind(a.type)
    if k in ("int", "bool"):
        s = pc.cast(a, pa.string())
    elif k == "float":
        s = _float_text(a)
    elif k == "str":
        dirty = pc.any(pc.match_substring_regex(a, _ESCAPE)).as_py()  # (one pass, usually no)
        if dirty and pc.any(pc.match_substring_regex(a, _CONTROL)).as_py():
            return _msgspec_text(a)  # \u00XX escapes: msgspec's own
        if dirty:
            a = pc.replace_substring(pc.replace_substring(a, "\\", "\\\\"), '"', '\\"')
        s = pc.binary_join_element_wise('"', a, '"', "")
    elif k == "null":
        return pa.repeat(pa.scalar("null"), len(a))
    else:  # nested, temporal: msgspec per value
        return _msgspec_text(a)
    return pc.fill_null(s, "null") if s.null_count else s


def _msgspec_text(a: pa.Array) -> pa.Array:
    return pa.array([_enc(x).decode() for x in a.to_pylist()], pa.string())


def encode_values(batch: ColumnarBatch) -> list[bytes]:
    """The JSON bytes of each value (a dict of the batch's columns)."""
    if not batch.names:
        return [b"{}"] * batch.n
    parts: list[Any] = []
    for i, (name, col) in enumerate(batch.columns().items()):
        parts.append(("{" if i == 0 else ",") + _enc(name).decode() + ":")
        parts.append(_json_text(to_array(col, batch.n)))
    parts.append("}")
    joined = pc.binary_join_element_wise(*parts, "")
    return list(joined.cast(pa.binary()).to_pylist())


def encodable(batch: ColumnarBatch) -> bool:
    """Whether the values are exactly the columns (not original dicts with computed fields)."""
    return batch.scalar is None and (batch.rows is None or batch.overlay is None)


__all__ = ["ArrowJsonDecoder", "arrow_timestamps", "encodable", "encode_values"]
