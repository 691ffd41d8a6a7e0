"""Schema-aware serdes: Confluent-framed Avro with a schema registry (typed: :func:`avro_of`),
JSON Schema, MessagePack, Arrow IPC (a message of many rows).

Each is a :class:`streams.core.serde.Serde` (``None`` <-> ``None``; failures raise
:class:`streams.core.errors.SerializationError`).

>>> from streams.core.serdes import MSGPACK, AvroSerde, InMemoryRegistry, JsonSchemaSerde
>>> reg = InMemoryRegistry()       # or SchemaRegistryClient("http://registry:8081")
>>> avro = AvroSerde(reg, schema={"type": "record", "name": "Click", "fields": [
...     {"name": "user", "type": "string"}, {"name": "n", "type": "long"}]}, topic="clicks")
>>> data = avro.serialize({"user": "ann", "n": 3})
>>> data[:5], avro.deserialize(data), reg.subjects()
(b'\\x00\\x00\\x00\\x00\\x01', {'user': 'ann', 'n': 3}, ['clicks-value'])
>>> JsonSchemaSerde({"type": "object", "required": ["n"]}).serialize({"n": 1})
b'{"n":1}'
>>> MSGPACK.deserialize(MSGPACK.serialize({"blob": b"\\x00"}))
{'blob': b'\\x00'}
"""

from __future__ import annotations

from streams.core.serdes.arrow import ARROW_IPC, ArrowIpcSerde
from streams.core.serdes.avro import AvroSerde, confluent_header
from streams.core.serdes.jsonschema import JsonSchemaSerde
from streams.core.serdes.msgpack import MSGPACK, MsgpackSerde
from streams.core.serdes.registry import (
    InMemoryRegistry,
    RegisteredSchema,
    Schema,
    SchemaRegistry,
    SchemaRegistryClient,
)
from streams.core.serdes.typed_avro import TypedAvro, avro_of, avro_schema

__all__ = [
    "ARROW_IPC",
    "MSGPACK",
    "ArrowIpcSerde",
    "AvroSerde",
    "InMemoryRegistry",
    "JsonSchemaSerde",
    "MsgpackSerde",
    "RegisteredSchema",
    "Schema",
    "SchemaRegistry",
    "SchemaRegistryClient",
    "TypedAvro",
    "avro_of",
    "avro_schema",
    "confluent_header",
]
