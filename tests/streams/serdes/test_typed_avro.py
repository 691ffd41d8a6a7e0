"""Avro from a record class: the derived schema, round trips for each family, and schema
evolution through the registry (a v2 reader type with a defaulted field reads v1 records)."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
from typing import Any

import fastavro
import faust
import msgspec
import pydantic
import pytest

from streams.core.errors import SerializationError
from streams.core.serdes import AvroSerde, InMemoryRegistry, TypedAvro, avro_of, avro_schema
from streams.core.typed_serde import record_of
from streams.core.types import record_type


class Addr(msgspec.Struct):
    city: str


class Payment(msgspec.Struct):
    card: str
    amount: int
    rate: float
    ok: bool
    blob: bytes
    at: datetime.datetime
    home: Addr
    note: str | None = None
    limit: int | None = 10
    tags: list[str] = msgspec.field(default_factory=list)
    counts: dict[str, int] = {}
    prev: Addr | None = None


def fields(schema: Any) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in schema["fields"]}


def test_schema_follows_the_annotations():
    s = avro_schema(Payment)
    assert s["type"] == "record" and s["name"] == "Payment"
    f = fields(s)
    assert [f[n]["type"] for n in ("card", "amount", "rate", "ok", "blob")] == [
        "string",
        "long",
        "double",
        "boolean",
        "bytes",
    ]
    assert f["at"]["type"] == {"type": "long", "logicalType": "timestamp-millis"}
    assert f["home"]["type"] == {
        "type": "record",
        "name": "Addr",
        "fields": [{"name": "city", "type": "string"}],
    }
    assert f["note"] == {"name": "note", "type": ["null", "string"], "default": None}
    # a union's default is of its first branch: a non-null default puts the type first
    assert f["limit"] == {"name": "limit", "type": ["long", "null"], "default": 10}
    assert f["tags"]["type"] == {"type": "array", "items": "string"}
    assert f["tags"]["default"] == []
    assert f["counts"]["type"] == {"type": "map", "values": "long"}
    assert f["prev"]["type"] == ["null", "Addr"]  # (a named type is defined once)
    assert [n for n in f if "default" not in f[n]] == [
        "card",
        "amount",
        "rate",
        "ok",
        "blob",
        "at",
        "home",
    ]
    fastavro.parse_schema(s)  # (a valid Avro schema)


def test_schema_name_and_namespace():
    s = avro_schema(Addr, name="Address", namespace="com.acme")
    assert (s["name"], s["namespace"]) == ("Address", "com.acme")


class Bad(msgspec.Struct):
    price: decimal.Decimal


class AnyField(msgspec.Struct):
    x: Any


class Union2(msgspec.Struct):
    x: int | str


@pytest.mark.parametrize(
    ("cls", "match"), [(Bad, "Bad.price"), (AnyField, "AnyField.x"), (Union2, "union")]
)
def test_a_field_without_an_avro_type_is_named(cls, match):
    with pytest.raises(TypeError, match=match):
        avro_schema(cls)


def test_round_trip_of_a_struct_with_nested_records():
    reg = InMemoryRegistry()
    serde = avro_of(Payment, reg, topic="payments")
    at = datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.UTC)
    p = Payment("c1", 5, 0.5, True, b"\x00\xff", at, Addr("Oslo"), tags=["a"], prev=Addr("x"))
    data = serde.serialize(p)
    assert data[:5] == b"\x00\x00\x00\x00\x01" and reg.subjects() == ["payments-value"]
    assert reg.get_schema(1) == serde.schema == avro_schema(Payment)
    assert serde.deserialize(data) == p
    assert serde.serialize(None) is None and serde.deserialize(None) is None
    # a plain reader (no class) gets dicts with nested dicts
    plain = AvroSerde(reg).deserialize(data)
    assert plain["home"] == {"city": "Oslo"} and plain["amount"] == 5
    assert serde.dicts().deserialize(data) == plain


@dataclasses.dataclass
class DTx:
    card: str
    amount: int = 0


class FTx(faust.Record):
    card: str
    amount: int = 0


class PTx(pydantic.BaseModel):
    card: str
    amount: int = 0


@pytest.mark.parametrize("cls", [DTx, FTx, PTx], ids=["dataclass", "faust", "pydantic"])
def test_round_trip_of_each_family(cls):
    serde = AvroSerde.for_type(cls, InMemoryRegistry(), topic="tx")
    assert isinstance(serde, TypedAvro) and record_of(serde) is record_type(cls)
    assert serde.type is cls and serde.name == "avro(tx-value)"
    back = serde.deserialize(serde.serialize(cls(card="c", amount=3)))
    assert type(back) is cls and (back.card, back.amount) == ("c", 3)


class FInner(faust.Record):
    x: int


class FOuter(faust.Record):
    a: int
    inner: FInner | None = None


def test_faust_nested_records_decode_into_their_class():
    serde = avro_of(FOuter, InMemoryRegistry(), topic="f")
    back = serde.deserialize(serde.serialize(FOuter(a=1, inner=FInner(x=2))))
    assert isinstance(back.inner, FInner) and back.inner.x == 2


def test_a_key_serde_registers_under_the_key_subject():
    reg = InMemoryRegistry()
    avro_of(Addr, reg, topic="t", is_key=True).serialize(Addr("x"))
    assert reg.subjects() == ["t-key"]


def test_a_value_of_the_wrong_type_is_a_serialization_error():
    serde = avro_of(Addr, InMemoryRegistry(), topic="t")
    with pytest.raises(SerializationError, match="does not match the schema"):
        serde.serialize({"city": 5})


def test_without_a_topic_or_subject_it_says_so():
    with pytest.raises(ValueError, match="topic= or subject="):
        TypedAvro(Addr, InMemoryRegistry())
    with pytest.raises(TypeError, match="not a record class"):
        avro_of(int, InMemoryRegistry(), topic="t")


# -- evolution -----------------------------------------------------------------------------------


class PayV1(msgspec.Struct):
    card: str
    amount: int


class PayV2(msgspec.Struct):
    card: str
    amount: int
    channel: str = "web"
    risk: float | None = None


def test_a_v2_reader_type_reads_v1_records_through_the_registry():
    # (the two versions are two classes here, so they are given one record name: an edited
    # class keeps its own name; Avro resolves records of the same name only)
    reg = InMemoryRegistry()
    v1 = avro_of(PayV1, reg, topic="pay", name="Pay")
    old = v1.serialize(PayV1("c1", 9))
    v2 = avro_of(PayV2, reg, topic="pay", name="Pay")
    assert v2.deserialize(old) == PayV2("c1", 9, "web", None)  # (the defaults fill in)
    # v2 is a new version of the subject, its records carry its own id
    new = v2.serialize(PayV2("c2", 1, "pos", 0.5))
    assert reg.latest("pay-value").version == 2 and new[1:5] != old[1:5]
    assert [reg.latest("pay-value").id] == [int.from_bytes(new[1:5], "big")]
    # the v2 schema is backward compatible: it reads what v1 wrote (as Avro resolves it)
    assert v2.reader_schema == fastavro.parse_schema(avro_schema(PayV2, name="Pay"))
    # and forward: a v1 reader reads v2 records, dropping the fields it does not know
    assert v1.deserialize(new) == PayV1("c2", 1)
    assert v2.deserialize(new) == PayV2("c2", 1, "pos", 0.5)


class PayV3(msgspec.Struct):
    card: str
    amount: int
    region: str  # (added without a default: v1 records cannot be read)


def test_a_new_field_without_a_default_does_not_resolve():
    reg = InMemoryRegistry()
    old = avro_of(PayV1, reg, topic="pay", name="Pay").serialize(PayV1("c", 1))
    with pytest.raises(SerializationError, match="does not resolve.*region"):
        avro_of(PayV3, reg, topic="pay", name="Pay").deserialize(old)


def test_records_of_another_name_do_not_resolve():
    reg = InMemoryRegistry()
    old = avro_of(PayV1, reg, topic="pay").serialize(PayV1("c", 1))
    with pytest.raises(SerializationError, match="does not resolve"):
        avro_of(PayV2, reg, topic="pay").deserialize(old)


class Renamed(msgspec.Struct, rename="camel"):
    card_id: str
    home_city: Addr | None = None


class Aliased(pydantic.BaseModel):
    card_id: str = pydantic.Field(alias="cardId")


@pytest.mark.parametrize("cls", [Renamed, Aliased], ids=["struct", "pydantic"])
def test_fields_are_named_as_in_json(cls):
    assert fields(avro_schema(cls))["cardId"]["type"] == "string"
    serde = avro_of(cls, InMemoryRegistry(), topic="r")
    obj = cls(cardId="c1") if cls is Aliased else cls("c1", Addr("Oslo"))
    back = serde.deserialize(serde.serialize(obj))
    assert back == obj and back.card_id == "c1"
    assert serde.dicts().deserialize(serde.serialize(obj))["cardId"] == "c1"
