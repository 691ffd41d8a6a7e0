"""Avro in the Confluent wire format: ``0x00``, a 4-byte big-endian schema id, Avro binary.

>>> from streams.core.serdes.registry import InMemoryRegistry
>>> reg = InMemoryRegistry()
>>> schema = {"type": "record", "name": "T", "fields": [
...     {"name": "a", "type": "long"}, {"name": "b", "type": "string"}]}
>>> serde = AvroSerde(reg, schema=schema, topic="t")
>>> data = serde.serialize({"a": 1, "b": "x"})
>>> data                               # magic, id 1 (registered as 't-value'), a=1, b="x"
b'\\x00\\x00\\x00\\x00\\x01\\x02\\x02x'
>>> serde.deserialize(data), reg.subjects()
({'a': 1, 'b': 'x'}, ['t-value'])

A reader needs only the registry: the writer schema is fetched by id (once per id).

>>> AvroSerde(reg).deserialize(data)
{'a': 1, 'b': 'x'}
"""

from __future__ import annotations

from collections.abc import Mapping
from io import BytesIO
from typing import TYPE_CHECKING, Any

import fastavro
import fastavro.validation

from streams.core.errors import SerializationError
from streams.core.serdes.registry import Schema, SchemaRegistry, parse_schema_text

if TYPE_CHECKING:
    from streams.core.serdes.typed_avro import TypedAvro

MAGIC_BYTE = 0
HEADER_SIZE = 5


def confluent_header(schema_id: int) -> bytes:
    """The 5-byte prefix of a Confluent-framed record.

    >>> confluent_header(258)
    b'\\x00\\x00\\x00\\x01\\x02'
    """
    if not 0 <= schema_id < 1 << 32:
        raise ValueError(f"schema id must fit in 4 unsigned bytes, got {schema_id}")
    return bytes((MAGIC_BYTE,)) + schema_id.to_bytes(4, "big")


def _parse(schema: Schema, what: str) -> Any:
    try:
        return fastavro.parse_schema(parse_schema_text(schema))
    except Exception as e:
        raise ValueError(f"invalid Avro {what}: {type(e).__name__}: {e}") from None


class AvroSerde:
    """Avro values framed for Confluent-compatible consumers and producers.

    ``schema`` is the writer schema; it is registered on first use under ``subject`` or, by
    Confluent's TopicNameStrategy, ``'{topic}-key'`` / ``'{topic}-value'``. Without a schema,
    ``serialize`` uses the subject's latest version. ``deserialize`` reads the writer schema
    id from each record; with ``reader_schema`` records are resolved into it (schema
    evolution: added fields take their defaults), otherwise decoded as written.
    Parsed schemas, the id and the header are cached, so only the first record talks to
    the registry.
    """

    def __init__(
        self,
        registry: SchemaRegistry,
        subject: str | None = None,
        schema: Schema | None = None,
        *,
        topic: str | None = None,
        is_key: bool = False,
        reader_schema: Schema | None = None,
        strict: bool = False,
    ) -> None:
        if subject is None and topic is not None:
            subject = f"{topic}-{'key' if is_key else 'value'}"
        if schema is not None and subject is None:
            raise ValueError(
                "AvroSerde with a schema needs subject= or topic= to register it under "
                "(TopicNameStrategy: topic='orders' -> subject 'orders-value')"
            )
        self.registry = registry
        self.subject = subject
        self.is_key = is_key
        self.strict = strict
        self._schema = parse_schema_text(schema) if schema is not None else None
        self._writer: Any = _parse(schema, "schema") if schema is not None else None
        self._reader: Any = (
            _parse(reader_schema, "reader schema") if reader_schema is not None else None
        )
        self._header: bytes | None = None
        self._schema_id: int | None = None
        self._writers: dict[int, Any] = {}  # schema id -> parsed writer schema

    @classmethod
    def for_type(
        cls,
        type_: type,
        registry: SchemaRegistry,
        subject: str | None = None,
        *,
        topic: str | None = None,
        is_key: bool = False,
        name: str | None = None,
    ) -> TypedAvro:
        """The Avro serde of a record class: its schema derived from the class (a record
        named ``name``, by default the class's), values decoded into it
        (:class:`~streams.core.serdes.typed_avro.TypedAvro`)."""
        from streams.core.serdes.typed_avro import TypedAvro

        return TypedAvro(type_, registry, subject, topic=topic, is_key=is_key, name=name)

    @property
    def name(self) -> str:
        return f"avro({self.subject})" if self.subject else "avro"

    def __repr__(self) -> str:
        return f"AvroSerde(subject={self.subject!r})"

    @property
    def schema_id(self) -> int:
        """The id records are written with (registers the schema on first access)."""
        if self._schema_id is None:
            self._resolve_writer()
        assert self._schema_id is not None
        return self._schema_id

    @property
    def reader_schema(self) -> Any:
        """The parsed reader schema records are resolved into (None: decoded as written)."""
        return self._reader

    def writer_schema(self, schema_id: int) -> Any:
        """The parsed writer schema of ``schema_id`` (fetched from the registry once)."""
        writer = self._writers.get(schema_id)
        return writer if writer is not None else self._load_writer(schema_id)

    def serialize(self, obj: Any) -> bytes | None:
        if obj is None:
            return None
        header = self._header
        if header is None:
            header = self._resolve_writer()
        buf = BytesIO()
        buf.write(header)
        try:
            fastavro.schemaless_writer(buf, self._writer, obj, strict=self.strict)
        except Exception as e:
            raise SerializationError(self._encode_error(obj, e)) from e
        return buf.getvalue()

    def deserialize(self, data: bytes | None) -> Any:
        if data is None:
            return None
        if len(data) < HEADER_SIZE or data[0] != MAGIC_BYTE:
            raise SerializationError(self._frame_error(data))
        schema_id = int.from_bytes(data[1:HEADER_SIZE], "big")
        writer = self._writers.get(schema_id)
        if writer is None:
            writer = self._load_writer(schema_id)
        buf = BytesIO(data)
        buf.seek(HEADER_SIZE)
        try:
            value = fastavro.schemaless_reader(buf, writer, self._reader)
        except Exception as e:
            raise SerializationError(self._decode_error(schema_id, len(data), e)) from e
        if buf.tell() != len(data):
            raise SerializationError(
                f"avro: record with schema id {schema_id} has {len(data) - buf.tell()} "
                f"unread trailing bytes (payload is {len(data)} bytes): wrong schema or corrupt"
            )
        return value

    # -- slow paths ---------------------------------------------------------------------------

    def _resolve_writer(self) -> bytes:
        if self.subject is None:
            raise SerializationError(
                "avro: cannot serialize without a schema and a subject "
                "(give AvroSerde schema= and subject= or topic=)"
            )
        if self._schema is None:
            latest = self.registry.latest(self.subject)
            self._schema = latest.schema
            self._writer = _parse(latest.schema, f"schema id {latest.id}")
            schema_id = latest.id
        else:
            schema_id = self.registry.register(self.subject, self._schema)
        self._writers.setdefault(schema_id, self._writer)
        self._schema_id = schema_id
        self._header = confluent_header(schema_id)
        return self._header

    def _load_writer(self, schema_id: int) -> Any:
        try:
            schema = self.registry.get_schema(schema_id)
        except SerializationError as e:
            raise SerializationError(
                f"avro: cannot get the writer schema of a record with schema id {schema_id}: "
                f"{e.message}"
            ) from None
        try:
            writer = _parse(schema, f"writer schema id {schema_id}")
        except ValueError as e:
            raise SerializationError(f"avro: {e}") from None
        self._writers[schema_id] = writer
        return writer

    def _encode_error(self, obj: Any, e: Exception) -> str:
        where = f"avro({self.subject}, schema id {self._schema_id})"
        writer = self._writer
        if (
            isinstance(writer, dict)
            and writer.get("type") == "record"
            and not isinstance(obj, Mapping)
        ):
            return (
                f"{where}: record '{writer.get('name')}' needs a mapping, got {type(obj).__name__}"
            )
        try:
            fastavro.validation.validate(obj, self._writer, raise_errors=True)
        except fastavro.validation.ValidationError as v:
            detail = "; ".join(str(m) for m in v.errors) or str(v)
            return f"{where}: value does not match the schema: {detail}"
        except Exception:
            pass
        return f"{where}: cannot encode {type(obj).__name__}: {type(e).__name__}: {e}"

    @staticmethod
    def _frame_error(data: bytes) -> str:
        if len(data) == 0:
            return "avro: empty payload, expected the Confluent header (0x00 + 4-byte schema id)"
        if data[0] != MAGIC_BYTE:
            return (
                f"avro: unknown magic byte 0x{data[0]:02x} (expected 0x00): not Confluent-framed "
                f"Avro (first bytes {bytes(data[:8])!r})"
            )
        return f"avro: payload of {len(data)} bytes is shorter than the 5-byte Confluent header"

    def _decode_error(self, schema_id: int, size: int, e: Exception) -> str:
        if isinstance(e, EOFError | IndexError) or "EOF" in type(e).__name__:
            return (
                f"avro: truncated record: {size} bytes ran out before the end of a value "
                f"of writer schema id {schema_id} ({type(e).__name__}: {e})"
            )
        if type(e).__name__ == "SchemaResolutionError":
            return f"avro: writer schema id {schema_id} does not resolve to the reader schema: {e}"
        return f"avro: cannot decode a record of schema id {schema_id}: {type(e).__name__}: {e}"


__all__ = ["HEADER_SIZE", "MAGIC_BYTE", "AvroSerde", "confluent_header"]
