"""Each record family end to end through the test driver, as JSON and as Avro, row-wise and on
Arrow: a typed source, expressions and callables reading its fields, a typed sink; a reader
type with a new defaulted field reading records written before it; fields checked at build."""

from __future__ import annotations

import dataclasses

import faust
import msgspec
import pydantic
import pytest

import streams as st
from streams.core.errors import TopologyError
from streams.core.serde import BYTES
from streams.core.serdes import InMemoryRegistry, avro_of
from streams.core.typed_serde import json_of


class SPay(msgspec.Struct):
    card: str
    amount: int
    currency: str = "EUR"


@dataclasses.dataclass
class DPay:
    card: str
    amount: int
    currency: str = "EUR"


class FPay(faust.Record):
    card: str
    amount: int
    currency: str = "EUR"


class PPay(pydantic.BaseModel):
    card: str
    amount: int
    currency: str = "EUR"


class Alert(msgspec.Struct):
    card: str
    doubled: int


FAMILIES = {"struct": SPay, "dataclass": DPay, "faust": FPay, "pydantic": PPay}


def value_of(cls: type, wire: str) -> object:
    return cls if wire == "json" else avro_of(cls, InMemoryRegistry(), topic="payments")


@pytest.mark.parametrize("execution", ["auto", "row"])
@pytest.mark.parametrize("wire", ["json", "avro"])
@pytest.mark.parametrize("family", FAMILIES)
def test_a_typed_source_to_a_typed_sink(family, wire, execution):
    cls = FAMILIES[family]
    t = st.Topology("typed", execution=execution)
    pays = t.source("payments", value=value_of(cls, wire))
    seen: list[type] = []

    def alert(p: object) -> Alert:
        seen.append(type(p))
        return Alert(p.card, p.amount * 2)  # type: ignore[attr-defined]

    pays.filter(st.col("amount") >= 100).map_values(alert).to("alerts", value=Alert)
    pays.filter(lambda p: p.currency == "EUR").select("card", big=st.col("amount") > 50).to("flags")
    d = st.TopologyTestDriver(t)
    d.pipe_many("payments", [cls(card="c1", amount=150), cls(card="c2", amount=5)])
    d.pipe("payments", cls(card="c3", amount=500, currency="USD"))
    # the sink writes the Alert class's JSON
    raw = d.read("alerts", key=BYTES, value=BYTES)
    assert [msgspec.json.decode(r.value) for r in raw] == [
        {"card": "c1", "doubled": 300},
        {"card": "c3", "doubled": 1000},
    ]
    assert seen == [cls, cls]  # (functions receive the class's objects)
    assert d.read_values("flags") == [{"card": "c1", "big": True}, {"card": "c2", "big": False}]


class PayV1(msgspec.Struct):
    card: str
    amount: int


class PayV2(msgspec.Struct):
    card: str
    amount: int
    channel: str = "web"


class FPayV2(faust.Record):
    card: str
    amount: int
    channel: str = "web"


class PPayV2(pydantic.BaseModel):
    card: str
    amount: int
    channel: str = "web"


@pytest.mark.parametrize("reader", [PayV2, FPayV2, PPayV2], ids=["struct", "faust", "pydantic"])
@pytest.mark.parametrize("execution", ["auto", "row"])
def test_json_evolution_old_records_take_the_default(reader, execution):
    t = st.Topology("evo", execution=execution)
    t.source("payments", value=reader).filter(st.col("channel") == "web").to("web")
    d = st.TopologyTestDriver(t)
    d.pipe_raw("payments", None, json_of(PayV1).serialize(PayV1("c1", 9)))
    d.pipe("payments", reader(card="c2", amount=1, channel="pos"))
    # (an untyped sink writes the objects' fields as JSON; they read back as dicts)
    assert d.read_values("web") == [{"card": "c1", "amount": 9, "channel": "web"}]


@pytest.mark.parametrize("execution", ["auto", "row"])
def test_avro_evolution_v2_reads_v1_records_through_the_registry(execution):
    reg = InMemoryRegistry()
    old = avro_of(PayV1, reg, topic="payments", name="Pay").serialize(PayV1("c1", 9))
    t = st.Topology("evo", execution=execution)
    v2 = avro_of(PayV2, reg, topic="payments", name="Pay")
    t.source("payments", value=v2).filter(st.col("channel") == "web").to("web", value=PayV2)
    d = st.TopologyTestDriver(t)
    d.pipe_raw("payments", None, old)
    d.pipe("payments", PayV2("c2", 1, "pos"))
    assert d.read_values("web") == [PayV2("c1", 9, "web")]
    assert reg.latest("payments-value").version == 2


@pytest.mark.parametrize("wire", ["json", "avro"])
@pytest.mark.parametrize("family", FAMILIES)
def test_a_wrong_field_fails_at_build_time(family, wire):
    t = st.Topology("typo")
    pays = t.source("payments", value=value_of(FAMILIES[family], wire))
    with pytest.raises(TopologyError, match="amonut"):
        pays.filter(st.col("amonut") > 1)
    with pytest.raises(TopologyError, match="requires? field 'doubled'"):
        pays.select("card").to("alerts", value=Alert)
