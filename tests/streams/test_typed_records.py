"""Typed values end to end through the driver: Structs and dataclasses as source and sink
types, expressions and aggregations on them, functions receiving the objects, build-time
field checks, and the execution path of a chain with a callable in the middle."""

from __future__ import annotations

import dataclasses

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import streams as st
from streams import agg
from streams.core.errors import TopologyError


class Tx(msgspec.Struct):
    card: str
    amount: int
    currency: str = "EUR"


@dataclasses.dataclass
class TxD:
    card: str
    amount: int
    currency: str = "EUR"


class Alert(msgspec.Struct):
    card: str
    amount: int
    big: bool


RECORDS = [
    ("k1", {"card": "c1", "amount": 500}),
    ("k2", {"card": "c2", "amount": 50, "currency": "USD"}),
    ("k3", {"card": "c1", "amount": 3}),
]
MODES = ("auto", "row", "columnar")


@pytest.mark.parametrize("cls", [Tx, TxD])
@pytest.mark.parametrize("mode", MODES)
def test_typed_values_through_expressions_functions_and_aggregations(cls, mode):
    seen: list[type] = []

    def flag(v: cls) -> Alert:  # type: ignore[valid-type]
        seen.append(type(v))
        return Alert(v.card, v.amount, v.amount > 100)

    t = st.Topology("typed", execution=mode)
    s = t.source("tx", value=cls)
    s.filter(st.col("amount") > 5).map_values(flag).filter(st.col("big")).to("alerts", value=Alert)
    s.key_by("card").aggregate("totals", total=agg.sum("amount"), n=agg.count()).to("totals")
    s.filter(st.col("currency") == "EUR").select("card", cents=st.col("amount") * 100).to("eur")
    with st.TopologyTestDriver(t) as d:
        d.pipe_many("tx", RECORDS)
        assert d.read_values("alerts") == [Alert("c1", 500, True)]
        assert sorted(d.read_key_values("totals")) == [
            ("c1", {"total": 503, "n": 2}),
            ("c2", {"total": 50, "n": 1}),
        ]
        assert d.read_values("eur") == [
            {"card": "c1", "cents": 50000},
            {"card": "c1", "cents": 300},
        ]
    assert seen and set(seen) == {cls}  # functions receive the objects, in every mode


def test_a_record_that_misses_a_required_field_goes_to_the_error_policy():
    for mode in MODES:
        t = st.Topology("typed-bad", execution=mode)
        t.source("tx", value=Tx, on_error="dead_letter").filter(st.col("amount") > 0).to("out")
        with st.TopologyTestDriver(t) as d:
            d.pipe_many("tx", [{"card": "c1", "amount": 5}, {"card": "c2"}, {"amount": 1}])
            assert d.read_values("out") == [{"card": "c1", "amount": 5, "currency": "EUR"}]
            dead = d.read("typed-bad-dlq")
            assert len(dead) == 2, mode


def test_absent_fields_take_the_class_defaults_in_every_mode():
    """A reader type with a new defaulted field reads records written before it."""
    outs = []
    for mode in MODES:
        t = st.Topology("evolve", execution=mode)
        t.source("tx", value=Tx).filter(st.col("amount") > 0).to("out", value=Tx)
        with st.TopologyTestDriver(t) as d:
            d.pipe_raw("tx", None, b'{"card": "c1", "amount": 5}')
            outs.append(d.read_values("out"))
    assert outs == [[Tx("c1", 5, "EUR")]] * 3


def test_wrong_fields_are_build_time_errors():
    t = st.Topology("typo")
    s = t.source("tx", value=Tx)
    with pytest.raises(TopologyError, match="field 'amuont'.*did you mean 'amount'"):
        s.filter(st.col("amuont") > 5)
    with pytest.raises(TopologyError, match="field 'cardd'"):
        s.key_by("card").aggregate("sums", total=agg.sum("cardd"))
    with pytest.raises(TopologyError, match="writes Alert values, which require field 'big'"):
        s.to("alerts", value=Alert)

    def to_alert(v: Tx) -> Alert:
        return Alert(v.card, v.amount, True)

    with pytest.raises(TopologyError, match="field 'amout'"):
        s.map_values(to_alert).filter(st.col("amout") > 1)


def test_a_callable_in_the_middle_keeps_the_expression_steps_on_arrow():
    def flag(v: Tx) -> Alert:
        return Alert(v.card, v.amount, v.amount > 100)

    t = st.Topology("split")
    (
        t.source("tx", value=Tx)
        .filter(st.col("amount") > 5)
        .with_columns(eur=st.col("amount") * 2)
        .map_values(lambda v: Alert(v["card"], v["eur"], v["eur"] > 100))
        .to("plain")
    )
    t.source("tx2", value=Tx).filter(st.col("amount") > 5).map_values(flag).filter(
        st.col("big")
    ).select("card").to("typed")
    segs = {g.steps: g for sub in t.compile().subtopologies for g in sub.segments.values()}
    assert segs[("filter-1", "with-columns-2")].mode == "columnar"
    assert segs[("map-values-3",)].mode == "row"
    assert segs[("filter-5",)].mode == "columnar"  # (tx2's first filter)
    assert segs[("map-values-6",)].mode == "row"
    after = segs[("filter-7", "select-8")]
    assert after.mode == "columnar" and after.convert_rows  # (the callable returns Alert)
    with st.TopologyTestDriver(t) as d:
        d.pipe_many("tx", RECORDS)
        d.pipe_many("tx2", RECORDS)
        assert d.read_values("typed") == [{"card": "c1"}]
        assert d.read_values("plain") == [
            {"card": "c1", "amount": 1000, "big": True},
            {"card": "c2", "amount": 100, "big": False},
        ]


def test_the_columnar_chains_run_on_arrow_batches(monkeypatch):
    """Asserted on the execution path: the Arrow chain's call count, not timing."""
    from operators import columnar

    calls = {"arrow": 0}
    real = columnar.ColumnarChain.__call__

    def counting(self, batch):
        calls["arrow"] += 1
        return real(self, batch)

    monkeypatch.setattr(columnar.ColumnarChain, "__call__", counting)

    def flag(v: Tx) -> Alert:
        return Alert(v.card, v.amount, v.amount > 100)

    t = st.Topology("path")
    t.source("tx", value=Tx).filter(st.col("amount") > 5).map_values(flag).filter(st.col("big")).to(
        "out"
    )
    with st.TopologyTestDriver(t) as d:
        d.pipe_many("tx", RECORDS)
        assert d.read_values("out") == [{"card": "c1", "amount": 500, "big": True}]
    assert calls["arrow"] == 2  # one batch, through both expression chains


def test_map_batches_runs_a_vectorized_function():
    def cents(b: pa.RecordBatch) -> pa.RecordBatch:
        return b.append_column("cents", pc.multiply(b.column("amount"), 100))

    for mode in MODES:
        t = st.Topology("mb", execution=mode)
        t.source("tx", value=Tx).filter(st.col("amount") > 5).map_batches(cents).select(
            "card", "cents"
        ).to("out")
        with st.TopologyTestDriver(t) as d:
            d.pipe_many("tx", RECORDS)
            assert d.read_values("out") == [
                {"card": "c1", "cents": 50000},
                {"card": "c2", "cents": 5000},
            ], mode


def test_map_batches_that_changes_the_row_count_is_an_error_naming_the_step():
    t = st.Topology("mb-bad")
    t.source("tx", value=Tx).map_batches(lambda b: b.slice(0, 1), name="halve").to("out")
    with st.TopologyTestDriver(t) as d, pytest.raises(Exception, match="halve.*2 rows"):
        d.pipe_many("tx", RECORDS[:2])


def test_describe_shows_record_classes():
    def flag(v: Tx) -> Alert:
        return Alert(v.card, v.amount, True)

    t = st.Topology("desc")
    t.source("tx", value=Tx).map_values(flag).select("card").to("out")
    text = t.describe()
    assert "values: Tx(card, amount, currency)" in text
    assert "values: Alert(card, amount, big)" in text
    assert "fields: card" in text


def test_key_types_give_plain_serdes():
    t = st.Topology("keys")
    t.source("tx", key=int, value=Tx).to("out", key=int, value=Tx)
    with st.TopologyTestDriver(t) as d:
        d.pipe("tx", Tx("c", 1), key=7)
        assert d.read_key_values("out") == [(7, Tx("c", 1))]
    with pytest.raises(TopologyError, match="must be str, int, bytes or a record class"):
        st.Topology("bad").source("tx", value=float)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("schema", [None, "infer"])
def test_typed_avro_values_decode_into_arrow_and_back_into_objects(mode, schema):
    from streams.core.serdes import InMemoryRegistry, avro_of

    reg = InMemoryRegistry()
    seen: list[type] = []

    def keep(v: Tx) -> Tx:
        seen.append(type(v))
        return v

    t = st.Topology("avro-typed", execution=mode)
    src = t.source("tx", value=avro_of(Tx, reg, topic="tx"), schema=schema)
    src.filter(st.col("amount") > 1).map_values(keep).to("out", value=Tx)
    with st.TopologyTestDriver(t) as d:
        d.pipe_many("tx", [Tx("c", 5), Tx("d", 0)])
        assert d.read_values("out") == [Tx("c", 5)]
    assert seen == [Tx]
