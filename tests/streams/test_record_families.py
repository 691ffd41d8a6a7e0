"""The four record families as value types: what RecordType reads of each class, mappings to
objects and back, JSON through TypedJson, and a reader type with a new defaulted field reading
records written without it."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import faust
import msgspec
import pydantic
import pytest

from streams.core.errors import TopologyError
from streams.core.serde import STR
from streams.core.typed_serde import TypedJson, json_of, record_of, serde_for
from streams.core.types import as_mapping, family_of, get_field, record_type


class SPay(msgspec.Struct):
    card: str
    amount: int
    currency: str = "EUR"
    tags: list[str] = msgspec.field(default_factory=list)


@dataclasses.dataclass
class DPay:
    card: str
    amount: int
    currency: str = "EUR"
    tags: list[str] = dataclasses.field(default_factory=list)


class FPay(faust.Record, serializer="json"):
    card: str
    amount: int
    currency: str = "EUR"
    tags: list[str] = []


class PPay(pydantic.BaseModel):
    card: str
    amount: int
    currency: str = "EUR"
    tags: list[str] = pydantic.Field(default_factory=list)


FAMILIES = {"struct": SPay, "dataclass": DPay, "faust": FPay, "pydantic": PPay}
params = pytest.mark.parametrize(("family", "cls"), FAMILIES.items(), ids=list(FAMILIES))


def make(cls: type, **kw: Any) -> Any:
    return cls(**kw)


@params
def test_family_fields_and_defaults(family, cls):
    rt = record_type(cls)
    assert rt is not None and rt.family == family == family_of(cls)
    assert rt.fields == ("card", "amount", "currency", "tags")
    assert rt.annotations["amount"] is int and rt.annotations["tags"] == list[str]
    assert rt.required() == ("card", "amount")
    assert rt.default("currency") == "EUR" and rt.default("tags") == []
    assert record_type(cls) is rt  # (cached)


@params
def test_from_dict_fills_defaults_and_to_dict_gives_every_field(family, cls):
    rt = record_type(cls)
    obj = rt.from_dict({"card": "c1", "amount": 5})
    assert type(obj) is cls
    assert (obj.card, obj.amount, obj.currency, obj.tags) == ("c1", 5, "EUR", [])
    assert rt.to_dict(obj) == {"card": "c1", "amount": 5, "currency": "EUR", "tags": []}
    assert as_mapping(obj) == rt.to_dict(obj)
    assert get_field(obj, "amount") == 5


@params
def test_from_dict_drops_unknown_fields(family, cls):
    obj = record_type(cls).from_dict({"card": "c", "amount": 1, "extra": True})
    assert not hasattr(obj, "extra") and obj.amount == 1


@params
def test_json_round_trip_through_typed_json(family, cls):
    s = serde_for(cls, where="value")
    assert isinstance(s, TypedJson) and record_of(s) is record_type(cls) and s.type is cls
    obj = make(cls, card="c2", amount=7, tags=["x"])
    data = s.serialize(obj)
    assert msgspec.json.decode(data) == {
        "card": "c2",
        "amount": 7,
        "currency": "EUR",
        "tags": ["x"],
    }
    back = s.deserialize(data)
    assert type(back) is cls and record_type(cls).to_dict(back) == record_type(cls).to_dict(obj)
    assert s.serialize(None) is None and s.deserialize(None) is None


@params
def test_json_ignores_unknown_fields(family, cls):
    obj = json_of(cls).deserialize(b'{"card": "c", "amount": 3, "old": [1, 2], "__faust": {}}')
    assert (obj.card, obj.amount, obj.currency) == ("c", 3, "EUR")


@params
def test_json_missing_required_field_raises(family, cls):
    with pytest.raises((msgspec.ValidationError, pydantic.ValidationError), match="amount"):
        json_of(cls).deserialize(b'{"card": "c"}')


@params
def test_json_not_an_object_raises(family, cls):
    with pytest.raises((msgspec.ValidationError, pydantic.ValidationError)):
        json_of(cls).deserialize(b"[1, 2]")


def test_typed_decode_validates_types_where_the_library_does():
    with pytest.raises(msgspec.ValidationError, match=r"Expected `int`, got `str`"):
        json_of(SPay).deserialize(b'{"card": "c", "amount": "5"}')
    with pytest.raises(pydantic.ValidationError, match="amount"):
        json_of(PPay).deserialize(b'{"card": "c", "amount": "five"}')


# -- evolution: a reader type with a new defaulted field reads records written before it ---------


class SPayV1(msgspec.Struct):
    card: str
    amount: int


class SPayV2(msgspec.Struct):
    card: str
    amount: int
    channel: str = "web"
    risk: float | None = None


class PPayV2(pydantic.BaseModel):
    card: str
    amount: int
    channel: str = "web"


class FPayV2(faust.Record):
    card: str
    amount: int
    channel: str = "web"


@pytest.mark.parametrize("reader", [SPayV2, PPayV2, FPayV2], ids=["struct", "pydantic", "faust"])
def test_json_evolution_reader_with_a_default_reads_old_records(reader):
    old = json_of(SPayV1).serialize(SPayV1("c1", 9))
    got = json_of(reader).deserialize(old)
    assert (got.card, got.amount, got.channel) == ("c1", 9, "web")
    # and an old reader reads new records, ignoring the field it does not know
    new = json_of(reader).serialize(reader(card="c2", amount=1, channel="pos"))
    assert json_of(SPayV1).deserialize(new) == SPayV1("c2", 1)


# -- nesting -------------------------------------------------------------------------------------


class FAddr(faust.Record):
    city: str


class FCustomer(faust.Record):
    name: str
    home: FAddr
    past: list[FAddr] = []
    work: FAddr | None = None


def test_faust_builds_nested_records_from_json():
    s = json_of(FCustomer)
    obj = FCustomer(name="ann", home=FAddr(city="Oslo"), past=[FAddr(city="Bergen")])
    data = s.serialize(obj)
    assert msgspec.json.decode(data)["home"] == {"city": "Oslo"}
    back = s.deserialize(data)
    assert isinstance(back.home, FAddr) and back.home.city == "Oslo"
    assert [type(a) for a in back.past] == [FAddr] and back.work is None


def test_faust_optional_field_defaults_to_none():
    rt = record_type(FCustomer)
    assert rt.required() == ("name", "home") and rt.default("work") is None


def test_faust_reads_records_a_faust_app_wrote():
    data = FPay(card="c", amount=2).dumps()  # (faust's own JSON, with its __faust marker)
    assert b"__faust" in data
    assert json_of(FPay).deserialize(data) == FPay(card="c", amount=2)


def test_pydantic_default_factory_is_made_anew():
    rt = record_type(PPay)
    assert "tags" in rt.factories and rt.defaults["tags"] is list
    assert rt.default("tags") == [] and rt.default("tags") is not rt.default("tags")


# -- what is not a record class ------------------------------------------------------------------


class Plain:
    card: str


def test_a_class_of_no_family_is_not_a_record():
    assert record_type(Plain) is None and family_of(Plain) is None
    with pytest.raises(TopologyError, match="record class"):
        serde_for(Plain, where="value")
    with pytest.raises(TypeError, match="not a record class"):
        json_of(Plain)
    assert serde_for(str, where="key") is STR and record_of(STR) is None


def test_a_faust_model_is_recognised_in_a_fresh_interpreter():
    # (types.py looks for faust.models.record in sys.modules: `import faust` alone does not
    # load it, defining a model does)
    code = (
        "import sys, faust\n"
        "assert 'faust.models.record' not in sys.modules\n"
        "class Tx(faust.Record):\n"
        "    card: str\n"
        "from streams.core.types import record_type\n"
        "print(record_type(Tx).family)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert out.stdout.strip() == "faust"


# -- names on the wire ---------------------------------------------------------------------------


class Renamed(msgspec.Struct, rename="camel"):
    card_id: str
    amount: int = 0


class Aliased(pydantic.BaseModel):
    card_id: str = pydantic.Field(alias="cardId")
    amount: int = 0


def test_renamed_fields_are_read_by_their_json_names():
    assert record_type(Renamed).wire_names == {"card_id": "cardId"}
    assert record_type(Aliased).wire_names == {"card_id": "cardId"}
    assert json_of(Renamed).deserialize(b'{"cardId": "c", "amount": 1}') == Renamed("c", 1)
    # pydantic: by alias (as other pydantic producers write) or by name (as we write)
    s = json_of(Aliased)
    assert s.deserialize(b'{"cardId": "c"}').card_id == "c"
    assert s.deserialize(s.serialize(Aliased(cardId="d"))).card_id == "d"
    assert record_type(Aliased).from_dict({"cardId": "e"}).card_id == "e"
    # the columnar decoder reads JSON fields by their names: these decode row by row
    assert record_type(Renamed).arrow_schema() is None
    assert record_type(Aliased).arrow_schema() is None
    assert record_type(SPay).wire_names == {}
