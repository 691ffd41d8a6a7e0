"""Confluent-framed Avro: fixed byte vectors, round trips, errors and schema evolution."""

from __future__ import annotations

import time
from typing import Any

import pytest

from streams.core.errors import SerializationError
from streams.core.serde import Serde
from streams.core.serdes import (
    AvroSerde,
    InMemoryRegistry,
    RegisteredSchema,
    Schema,
    confluent_header,
)

T_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "T",
    "fields": [{"name": "a", "type": "long"}, {"name": "b", "type": "string"}],
}


class FixedIdRegistry:
    """A registry stub that hands out a chosen id, to pin the header bytes."""

    def __init__(self, schema_id: int) -> None:
        self.schema_id = schema_id
        self.schemas: dict[int, Schema] = {}
        self.calls: list[str] = []

    def register(self, subject: str, schema: Schema) -> int:
        self.calls.append(f"register {subject}")
        self.schemas[self.schema_id] = schema
        return self.schema_id

    def get_schema(self, schema_id: int) -> Schema:
        self.calls.append(f"get {schema_id}")
        return self.schemas[schema_id]

    def latest(self, subject: str) -> RegisteredSchema:
        raise NotImplementedError


def test_is_a_serde_and_none_passes_through() -> None:
    serde = AvroSerde(InMemoryRegistry(), schema=T_SCHEMA, topic="t")
    assert isinstance(serde, Serde)
    assert serde.name == "avro(t-value)"
    assert serde.serialize(None) is None
    assert serde.deserialize(None) is None


def test_fixed_vector_id_1() -> None:
    # magic 0x00, id 1 as 4 big-endian bytes, a=1 -> zigzag 2 -> 0x02,
    # b="x" -> length 1 -> zigzag 2 -> 0x02, then b"x".
    expected = b"\x00" + b"\x00\x00\x00\x01" + b"\x02" + b"\x02" + b"x"
    reg = InMemoryRegistry()
    serde = AvroSerde(reg, schema=T_SCHEMA, topic="t")
    assert serde.serialize({"a": 1, "b": "x"}) == expected
    assert serde.schema_id == 1
    assert AvroSerde(reg).deserialize(expected) == {"a": 1, "b": "x"}


@pytest.mark.parametrize(
    ("record", "body"),
    [
        ({"a": 0, "b": ""}, b"\x00\x00"),
        ({"a": -1, "b": "x"}, b"\x01\x02x"),  # zigzag(-1) = 1
        ({"a": 63, "b": "x"}, b"\x7e\x02x"),  # zigzag(63) = 126, one byte
        ({"a": 64, "b": "x"}, b"\x80\x01\x02x"),  # zigzag(64) = 128 -> varint 80 01
        ({"a": -65, "b": "x"}, b"\x81\x01\x02x"),  # zigzag(-65) = 129 -> varint 81 01
        ({"a": 1, "b": "h\u00e9"}, b"\x02\x06h\xc3\xa9"),  # UTF-8 "hé" is 3 bytes -> 0x06
    ],
)
def test_fixed_vectors_with_a_pinned_id(record: dict[str, Any], body: bytes) -> None:
    reg = FixedIdRegistry(258)
    serde = AvroSerde(reg, "my-subject", T_SCHEMA)
    data = serde.serialize(record)
    assert data == b"\x00\x00\x00\x01\x02" + body
    assert serde.deserialize(data) == record
    assert reg.calls == ["register my-subject"]  # no fetch: the writer schema is known


def test_header_helper() -> None:
    assert confluent_header(1) == b"\x00\x00\x00\x00\x01"
    assert confluent_header(0xFFFFFFFF) == b"\x00\xff\xff\xff\xff"
    with pytest.raises(ValueError, match="4 unsigned bytes"):
        confluent_header(1 << 32)


def test_topic_name_strategy_for_keys_and_values() -> None:
    reg = InMemoryRegistry()
    key = AvroSerde(reg, schema="string", topic="orders", is_key=True)
    value = AvroSerde(reg, schema=T_SCHEMA, topic="orders")
    assert key.serialize("k1") == b"\x00\x00\x00\x00\x01\x04k1"
    assert value.serialize({"a": 2, "b": "y"}) is not None
    assert reg.subjects() == ["orders-key", "orders-value"]
    assert key.deserialize(key.serialize("k2")) == "k2"


def test_registers_once_and_fetches_each_writer_id_once() -> None:
    reg = FixedIdRegistry(7)
    writer = AvroSerde(reg, "s", T_SCHEMA)
    records = [writer.serialize({"a": i, "b": str(i)}) for i in range(100)]
    reader = AvroSerde(reg)
    assert [reader.deserialize(d) for d in records] == [{"a": i, "b": str(i)} for i in range(100)]
    assert reg.calls == ["register s", "get 7"]


def test_round_trip_of_a_rich_record() -> None:
    schema = {
        "type": "record",
        "name": "Order",
        "namespace": "shop",
        "fields": [
            {"name": "id", "type": "long"},
            {"name": "note", "type": ["null", "string"], "default": None},
            {"name": "items", "type": {"type": "array", "items": "string"}},
            {"name": "attrs", "type": {"type": "map", "values": "double"}},
            {"name": "blob", "type": "bytes"},
            {"name": "state", "type": {"type": "enum", "name": "S", "symbols": ["NEW", "PAID"]}},
            {
                "name": "addr",
                "type": {
                    "type": "record",
                    "name": "Addr",
                    "fields": [{"name": "city", "type": "string"}],
                },
            },
        ],
    }
    serde = AvroSerde(InMemoryRegistry(), schema=schema, topic="orders")
    value = {
        "id": 2**40,
        "note": None,
        "items": ["a", "b"],
        "attrs": {"w": 1.5},
        "blob": b"\x00\xff",
        "state": "PAID",
        "addr": {"city": "Oslo"},
    }
    assert serde.deserialize(serde.serialize(value)) == value


def test_schema_as_json_text() -> None:
    import json

    reg = InMemoryRegistry()
    data = AvroSerde(reg, "s", json.dumps(T_SCHEMA)).serialize({"a": 1, "b": "x"})
    assert data == b"\x00\x00\x00\x00\x01\x02\x02x"
    assert reg.get_schema(1) == T_SCHEMA


def test_serialize_with_the_latest_version_when_no_schema_is_given() -> None:
    reg = InMemoryRegistry()
    reg.register("t-value", T_SCHEMA)
    serde = AvroSerde(reg, topic="t")
    assert serde.serialize({"a": 1, "b": "x"}) == b"\x00\x00\x00\x00\x01\x02\x02x"


# -- errors ------------------------------------------------------------------------------------


@pytest.fixture()
def t_serde() -> AvroSerde:
    return AvroSerde(InMemoryRegistry(), schema=T_SCHEMA, topic="t")


def test_wrong_magic_byte(t_serde: AvroSerde) -> None:
    with pytest.raises(SerializationError, match=r"unknown magic byte 0x01 \(expected 0x00\)"):
        t_serde.deserialize(b"\x01\x00\x00\x00\x01\x02\x02x")
    with pytest.raises(SerializationError, match="magic byte 0x7b"):
        t_serde.deserialize(b'{"a": 1}')  # JSON on an Avro topic


def test_missing_or_short_header(t_serde: AvroSerde) -> None:
    with pytest.raises(SerializationError, match="empty payload"):
        t_serde.deserialize(b"")
    with pytest.raises(SerializationError, match="shorter than the 5-byte Confluent header"):
        t_serde.deserialize(b"\x00\x00\x00")


def test_unknown_schema_id(t_serde: AvroSerde) -> None:
    with pytest.raises(SerializationError, match="schema id 99") as info:
        t_serde.deserialize(b"\x00\x00\x00\x00\x63\x02\x02x")
    assert "unknown schema id 99" in str(info.value)


def test_truncated_payload(t_serde: AvroSerde) -> None:
    data = t_serde.serialize({"a": 1, "b": "xyz"})
    assert data is not None
    with pytest.raises(SerializationError, match="truncated record"):
        t_serde.deserialize(data[:-1])
    with pytest.raises(SerializationError, match="truncated record"):
        t_serde.deserialize(data[:5])


def test_trailing_bytes(t_serde: AvroSerde) -> None:
    data = t_serde.serialize({"a": 1, "b": "x"})
    assert data is not None
    with pytest.raises(SerializationError, match="1 unread trailing bytes"):
        t_serde.deserialize(data + b"\x00")


def test_value_that_does_not_match_names_the_field(t_serde: AvroSerde) -> None:
    with pytest.raises(SerializationError, match=r"T\.a is <oops> .* expected long"):
        t_serde.serialize({"a": "oops", "b": "x"})
    with pytest.raises(SerializationError, match=r"T\.b\) is None expected string"):
        t_serde.serialize({"a": 1})
    with pytest.raises(SerializationError, match="record 'T' needs a mapping, got int"):
        t_serde.serialize(5)


def test_strict_rejects_extra_fields() -> None:
    lax = AvroSerde(InMemoryRegistry(), schema=T_SCHEMA, topic="t")
    assert lax.serialize({"a": 1, "b": "x", "zz": 0}) == b"\x00\x00\x00\x00\x01\x02\x02x"
    strict = AvroSerde(InMemoryRegistry(), schema=T_SCHEMA, topic="t", strict=True)
    with pytest.raises(SerializationError, match="zz"):
        strict.serialize({"a": 1, "b": "x", "zz": 0})


def test_configuration_errors() -> None:
    with pytest.raises(ValueError, match="needs subject= or topic="):
        AvroSerde(InMemoryRegistry(), schema=T_SCHEMA)
    with pytest.raises(ValueError, match="invalid Avro schema"):
        AvroSerde(InMemoryRegistry(), "s", {"type": "recrod", "name": "X"})
    with pytest.raises(SerializationError, match="without a schema and a subject"):
        AvroSerde(InMemoryRegistry()).serialize({"a": 1})
    with pytest.raises(SerializationError, match="unknown subject 'nope'"):
        AvroSerde(InMemoryRegistry(), "nope").serialize({"a": 1})


# -- schema evolution --------------------------------------------------------------------------

V1 = {"type": "record", "name": "User", "fields": [{"name": "id", "type": "long"}]}
V2 = {
    "type": "record",
    "name": "User",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "email", "type": ["null", "string"], "default": None},
        {"name": "score", "type": "int", "default": 10},
    ],
}


def test_writer_v1_reader_v2_takes_defaults() -> None:
    reg = InMemoryRegistry()
    v1 = AvroSerde(reg, schema=V1, topic="users")
    v2 = AvroSerde(reg, schema=V2, topic="users", reader_schema=V2)
    old = v1.serialize({"id": 5})
    new = v2.serialize({"id": 6, "email": "a@b", "score": 3})
    assert old is not None and new is not None
    assert old[1:5] == b"\x00\x00\x00\x01" and new[1:5] == b"\x00\x00\x00\x02"
    assert v2.deserialize(old) == {"id": 5, "email": None, "score": 10}
    assert v2.deserialize(new) == {"id": 6, "email": "a@b", "score": 3}
    assert reg.latest("users-value") == RegisteredSchema("users-value", 2, 2, V2)
    # a reader without a reader schema sees each record as it was written
    assert AvroSerde(reg).deserialize(old) == {"id": 5}


def test_writer_v2_reader_v1_drops_new_fields() -> None:
    reg = InMemoryRegistry()
    data = AvroSerde(reg, schema=V2, topic="users").serialize({"id": 1, "email": "e", "score": 2})
    assert AvroSerde(reg, reader_schema=V1).deserialize(data) == {"id": 1}


def test_incompatible_reader_is_a_clear_error() -> None:
    reg = InMemoryRegistry()
    data = AvroSerde(reg, schema=V1, topic="users").serialize({"id": 1})
    no_default = {
        "type": "record",
        "name": "User",
        "fields": [{"name": "id", "type": "long"}, {"name": "x", "type": "int"}],
    }
    with pytest.raises(SerializationError, match="does not resolve to the reader schema"):
        AvroSerde(reg, reader_schema=no_default).deserialize(data)


def test_speed_smoke() -> None:
    """Not a benchmark: guards against losing the caches (a registry call per record)."""
    serde = AvroSerde(InMemoryRegistry(), schema=T_SCHEMA, topic="t")
    record = {"a": 123456, "b": "hello world"}
    data = serde.serialize(record)
    n = 20_000
    start = time.perf_counter()
    for _ in range(n):
        serde.serialize(record)
        serde.deserialize(data)
    per_record_us = (time.perf_counter() - start) / n * 1e6
    assert per_record_us < 200, per_record_us
