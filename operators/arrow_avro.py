"""Sources with Avro values and a ``schema=``: a fetched batch of Confluent-framed Avro messages
(:class:`~streams.core.serdes.AvroSerde`) becomes one :class:`~operators.columnar.ColumnarBatch`.

With ``schema="infer"`` the Arrow schema comes from the Avro schema (:func:`arrow_schema`): the
serde's reader schema, or else the writer schema of each schema id in the batch. Several writer
schemas in one batch are unified where Arrow can (a field an older writer lacks is null,
``promote_options="default"``); otherwise each run of messages of one schema id is its own
batch, in record order. The mapping is exact: ``to_rows()`` gives the dicts
``AvroSerde.deserialize`` gives, the same Python values and types. An Avro type Arrow would not
give back equally (a union of several non-null types, a map, a recursive record, a value that
is not a record) raises :class:`~operators.expr_arrow.Unsupported`, and the source decodes that
batch row by row instead.

With a declared ``pyarrow.Schema`` the records carry its fields (others dropped, absent ones
null), as for JSON values; a value that does not fit a field's type is a
:class:`~streams.core.errors.SerializationError` naming the topic, partition and offset. So is an
undecodable message (not Confluent-framed, unknown schema id, truncated, a null value), handled
by the source's error policy (the dead-letter topic gets its original bytes).

Decoding is one ``AvroSerde.deserialize`` per message (its checks: framing, trailing bytes)
and one ``pa.RecordBatch.from_pylist`` per batch. Measured on 10K bid-like records (7 flat
fields; best of 15 on a shared 2-core machine; ``PYTHONPATH=. python bench/avro_decode.py``):
row decode into dicts ~33-35 ms, this decoder ~40-42 ms (the same decode, then ~4 ms into
Arrow), a run of payloads read as one Avro object-container block (``fastavro.reader``) ~27 ms.
The block is not used: it cannot tell where one message ends, so a message with trailing
bytes or one byte short would shift the next ones into wrong values instead of an error.

>>> from streams.core.serde import STR
>>> from streams.core.serdes import AvroSerde, InMemoryRegistry
>>> reg = InMemoryRegistry()
>>> schema = {"type": "record", "name": "Bid", "fields": [
...     {"name": "auction", "type": "long"}, {"name": "url", "type": ["null", "string"]}]}
>>> serde = AvroSerde(reg, schema=schema, topic="bids")
>>> arrow_schema(serde.writer_schema(serde.schema_id))
auction: int64
url: string
>>> d = ArrowAvroDecoder(serde, "infer", STR, "bids", 0)
>>> msgs = [(b"k", serde.serialize({"auction": 1, "url": None}), 7, (), 40)]
>>> [b.to_rows() for b in d.batches(msgs)]
[[('k', {'auction': 1, 'url': None}, 7, (), 40)]]
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]

from operators.columnar import ColumnarBatch
from operators.expr_arrow import Unsupported
from streams.core.errors import SerializationError
from streams.core.records import as_raw
from streams.core.serde import Serde
from streams.core.serdes.avro import HEADER_SIZE, MAGIC_BYTE, AvroSerde

_PRIMITIVE = {
    "null": pa.null(),
    "boolean": pa.bool_(),
    "int": pa.int32(),
    "long": pa.int64(),
    # float64, not float32: the value fastavro gives is a Python float (a double), and Arrow
    # arithmetic on float32 columns would round differently from Python's
    "float": pa.float64(),
    "double": pa.float64(),
    "bytes": pa.binary(),
    "string": pa.string(),
}

# the logical types fastavro decodes (its ``{type}-{logicalType}`` readers); on another base
# type a logical type is ignored, by fastavro and here. "+00:00", not "UTC": Arrow gives
# ``datetime.timezone.utc`` back for it, the tzinfo fastavro's datetimes have
_LOGICAL = {
    "long-timestamp-millis": pa.timestamp("ms", tz="+00:00"),
    "long-timestamp-micros": pa.timestamp("us", tz="+00:00"),
    "long-local-timestamp-millis": pa.timestamp("ms"),
    "long-local-timestamp-micros": pa.timestamp("us"),
    "int-date": pa.date32(),
    "int-time-millis": pa.time32("ms"),
    "long-time-micros": pa.time64("us"),
    "string-uuid": getattr(pa, "uuid", lambda: None)(),  # (uuid.UUID values; pyarrow >= 18)
}


def arrow_schema(avro: Any) -> pa.Schema:
    """The Arrow schema of a parsed Avro record schema (``fastavro.parse_schema``); raises
    :class:`~operators.expr_arrow.Unsupported` for what Arrow would not give back equally."""
    named = avro.get("__named_schemas", {}) if isinstance(avro, dict) else {}
    t = _type(avro, named, ())
    if not pa.types.is_struct(t):
        raise Unsupported(f"Avro values that are not records ({t})")
    return pa.schema([t.field(i) for i in range(t.num_fields)])


def _type(s: Any, named: dict[str, Any], path: tuple[str, ...]) -> pa.DataType:
    if isinstance(s, list):  # a union
        members = [m for m in s if m != "null"]
        if len(members) > 1:
            raise Unsupported(f"a union of several types {s}")
        return _type(members[0], named, path) if members else pa.null()
    if isinstance(s, str):
        if s in _PRIMITIVE:
            return _PRIMITIVE[s]
        if s in path:
            raise Unsupported(f"the recursive record {s!r}")
        if s not in named:
            raise Unsupported(f"the unknown type {s!r}")
        return _type(named[s], named, path)
    t = s.get("type")
    if not isinstance(t, str):
        return _type(t, named, path)
    logical = s.get("logicalType")
    if logical is not None and f"{t}-{logical}" in _LOGICAL:
        lt = _LOGICAL[f"{t}-{logical}"]
        if lt is None:
            raise Unsupported(f"the logical type {logical} (this pyarrow)")
        return lt
    if logical == "decimal" and t in ("bytes", "fixed"):
        return _decimal(s)
    if t in _PRIMITIVE:
        return _PRIMITIVE[t]
    if t in ("record", "error"):
        name = s.get("name", "")
        inner = (*path, name)
        fields = [pa.field(f["name"], _type(f["type"], named, inner)) for f in s["fields"]]
        return pa.struct(fields)
    if t == "enum":
        return pa.string()
    if t == "fixed":
        return pa.binary(int(s["size"]))
    if t == "array":
        return pa.list_(_type(s["items"], named, path))
    # a map: Arrow's map values come back as lists of (key, value) pairs, not dicts
    raise Unsupported(f"the Avro type {t!r}")


def _decimal(s: Any) -> pa.DataType:
    precision, scale = s.get("precision"), s.get("scale", 0)
    ok = isinstance(precision, int) and isinstance(scale, int) and 0 <= scale <= precision
    if not ok or not 1 <= precision <= 76:
        raise Unsupported(f"a decimal of precision {precision} and scale {scale}")
    return (pa.decimal128 if precision <= 38 else pa.decimal256)(precision, scale)


class ArrowAvroDecoder:
    """Decodes one source partition's batches of Avro values (the source applies its
    ``timestamp=`` expression to the batches, as for any columnar input)."""

    def __init__(
        self, serde: AvroSerde, schema: Any, key_serde: Serde | None, topic: str, partition: int
    ) -> None:
        self.serde = serde
        self.declared: pa.Schema | None = None if isinstance(schema, str) else schema
        self.key_serde, self.topic, self.partition = key_serde, topic, partition
        self._schemas: dict[int, pa.Schema | Unsupported] = {}  # writer schema id -> Arrow
        self._reader: pa.Schema | Unsupported | None = None

    def _error(self, message: str, offset: int) -> SerializationError:
        return SerializationError(
            message, topic=self.topic, partition=self.partition, offset=offset
        )

    def _schema_id(self, value: bytes | None, offset: int) -> int:
        if value is None:
            raise self._error("a null value on a source with a schema", offset)
        if len(value) < HEADER_SIZE or value[0] != MAGIC_BYTE:
            try:
                self.serde.deserialize(value)  # (its message says what is wrong)
            except SerializationError as e:
                raise self._error(f"could not deserialize the value: {e.message}", offset) from e
            raise self._error("could not deserialize the value: not Confluent-framed", offset)
        return _id(value)

    def _arrow(self, schema_id: int) -> pa.Schema:
        """The Arrow schema records of ``schema_id`` decode into (inferred; cached)."""
        got = self._schemas.get(schema_id)
        if got is None:
            reader = self.serde.reader_schema
            if reader is not None:
                if self._reader is None:
                    self._reader = _mapped(reader)
                got = self._reader
                self.serde.writer_schema(schema_id)  # (an unknown id is an error all the same)
            else:
                got = _mapped(self.serde.writer_schema(schema_id))
            self._schemas[schema_id] = got
        if isinstance(got, Unsupported):
            raise got
        return got

    def batches(self, msgs: Sequence[Any]) -> list[ColumnarBatch]:
        """Every record of ``msgs``: one batch, or one per run of a schema id where the
        writers' schemas cannot be unified (raises on the first undecodable message, and
        :class:`~operators.expr_arrow.Unsupported` before decoding anything if the batch
        cannot be decoded exactly into Arrow)."""
        raw: Sequence[Any] = msgs if isinstance(msgs[0], tuple) else [as_raw(m) for m in msgs]
        data = [m[1] for m in raw]
        try:
            heads = list(dict.fromkeys(map(_HEAD, data)))  # (in order of first appearance)
        except TypeError:  # a null value
            heads = []
        if not heads or any(len(h) < HEADER_SIZE or h[0] != MAGIC_BYTE for h in heads):
            for m in raw:
                self._schema_id(m[1], m[4])  # (raises naming the message)
        schemas: dict[bytes, pa.Schema] = {}
        for h in heads:
            try:
                schemas[h] = self._arrow(_id(h)) if self.declared is None else self.declared
            except SerializationError as e:  # (an unknown schema id)
                offset = next(m[4] for m in raw if m[1][:HEADER_SIZE] == h)
                raise self._error(f"could not deserialize the value: {e.message}", offset) from e
        try:
            values = list(map(self.serde.deserialize, data))
        except SerializationError:
            values = []
        if len(values) != len(raw) or not all(type(v) is dict for v in values):
            values = [self._value(m[1], m[4]) for m in raw]  # (raises naming the message)
        distinct = list(dict.fromkeys(schemas.values()))
        if len(distinct) == 1:
            return [self._batch(raw, values, distinct[0])]
        try:
            unified = pa.unify_schemas(distinct, promote_options="default")
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            unified = None
        if unified is not None:
            return [self._batch(raw, values, unified)]
        ids = list(map(_HEAD, data))
        out, i = [], 0
        while i < len(raw):
            j = i + 1
            while j < len(raw) and ids[j] == ids[i]:
                j += 1
            out.append(self._batch(raw[i:j], values[i:j], schemas[ids[i]]))
            i = j
        return out

    def _value(self, data: bytes, offset: int) -> Any:
        try:
            v = self.serde.deserialize(data)
        except SerializationError as e:
            raise self._error(f"could not deserialize the value: {e.message}", offset) from e
        if not isinstance(v, dict):
            raise self._error(
                f"could not deserialize the value: a {type(v).__name__}, not a record, "
                "on a source with a schema",
                offset,
            )
        return v

    def _batch(self, raw: Sequence[Any], values: list[Any], schema: pa.Schema) -> ColumnarBatch:
        n = len(raw)
        try:  # (one conversion of the dicts: ~2.5x faster than a pa.array per field)
            rb = pa.RecordBatch.from_pylist(values, schema=schema)
            cols = {name: rb.column(i) for i, name in enumerate(schema.names)}
        except (pa.ArrowException, OverflowError, TypeError, ValueError):
            cols = {f.name: self._column(raw, values, f) for f in schema}  # (raises, naming it)
        de = None if self.key_serde is None else self.key_serde.deserialize
        keys: list[Any] = [None] * n
        if de is not None:
            for i, m in enumerate(raw):
                if m[0] is not None:
                    try:
                        keys[i] = de(m[0])
                    except Exception as e:
                        raise self._error(
                            f"could not deserialize the key: {type(e).__name__}: {e}", m[4]
                        ) from e
        return ColumnarBatch(
            cols,
            n,
            keys=keys,
            ts=[m[2] for m in raw],
            headers=[m[3] for m in raw],
            offsets=[m[4] for m in raw],
        )

    def _column(self, raw: Sequence[Any], values: list[Any], f: pa.Field) -> pa.Array:
        xs = [v.get(f.name) for v in values]
        try:
            return pa.array(xs, type=f.type)
        except (pa.ArrowException, OverflowError, TypeError, ValueError) as e:
            if self.declared is None:  # (the Avro schema's own type: decode row by row)
                raise Unsupported(f"field {f.name!r} as {f.type}: {e}") from e
            err = e
        m = raw[0]
        for x, r in zip(xs, raw, strict=True):  # which record does not fit
            try:
                pa.array([x], type=f.type)
            except (pa.ArrowException, OverflowError, TypeError, ValueError) as e:
                err, m = e, r
                break
        raise self._error(
            f"could not deserialize the value: field {f.name!r} does not fit the declared "
            f"type {f.type}: {type(err).__name__}: {err}",
            m[4],
        ) from err

    def conform(self, batch: ColumnarBatch) -> None:
        """Give a batch that arrived as Arrow (a bounded run) the declared schema's fields,
        in its order and types (absent: null; others dropped)."""
        if self.declared is not None:
            batch.conform(self.declared)


_HEAD: Any = operator.itemgetter(slice(0, HEADER_SIZE))  # a value's magic byte and schema id


def _id(data: bytes) -> int:
    return int.from_bytes(data[1:HEADER_SIZE], "big")


def _mapped(avro: Any) -> pa.Schema | Unsupported:
    try:
        return arrow_schema(avro)
    except Unsupported as e:
        return e


__all__ = ["ArrowAvroDecoder", "arrow_schema"]
