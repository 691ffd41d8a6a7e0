"""Sources with Avro values and a schema: a fetched batch decodes into one columnar batch whose
rows are exactly what ``AvroSerde.deserialize`` gives; row, auto and columnar execution agree;
bad messages go to the dead-letter topic with their bytes."""

import datetime
import decimal
import logging
import uuid

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

import streams as st
from operators.arrow_avro import ArrowAvroDecoder, arrow_schema
from operators.expr_arrow import Unsupported
from operators.source import Decoder
from streams import windows
from streams.core.serdes import MSGPACK, AvroSerde, InMemoryRegistry, confluent_header
from streams.runtime.broker import TopicPartition
from streams.testing import TopologyTestDriver

from ._pipelines import tx_pipeline

V1 = {
    "type": "record",
    "name": "Tx",
    "fields": [
        {"name": "user", "type": "string"},
        {"name": "amount", "type": "long"},
        {"name": "ts", "type": "long"},
    ],
}
V2 = {  # a later version: a new optional field
    **V1,
    "fields": [*V1["fields"], {"name": "note", "type": ["null", "string"], "default": None}],
}
MODES = ["row", "auto", "columnar"]


def _records():
    users = ["ann", "bo", "cy"]
    return [{"user": users[i % 3], "amount": (i * 37) % 100, "ts": 300 * i} for i in range(12)]


def _serde(reg=None, schema=V1, topic="in", **kw):
    return AvroSerde(reg or InMemoryRegistry(), schema=schema, topic=topic, **kw)


def _topology(execution, value, schema="infer", on_error="fail"):
    t = st.Topology("avro", execution=execution)
    s = t.source("in", value=value, timestamp=st.col("ts"), schema=schema, on_error=on_error)
    tx_pipeline(s)
    return t


def _run(topology, msgs):
    """``msgs``: value bytes, appended with keys k0, k1, ... and timestamps 10, 11, ..."""
    d = TopologyTestDriver(topology)
    for i, m in enumerate(msgs):
        d.broker.append("in", 0, b"k%d" % i, m, 10 + i)
    d._run()
    d.end_of_input()
    sinks = [n.topic for n in topology.nodes if n.kind == "sink"]
    return d, {topic: [(r.key, r.value, r.timestamp) for r in d.read(topic)] for topic in sinks}


def _spy(monkeypatch):
    calls = []
    real = ArrowAvroDecoder.batches

    def spy(self, msgs):
        try:
            out = real(self, msgs)
        except Unsupported:
            calls.append((len(msgs), "unsupported"))
            raise
        calls.append((len(msgs), [b.n for b in out]))
        return out

    monkeypatch.setattr(ArrowAvroDecoder, "batches", spy)
    return calls


@pytest.mark.parametrize("execution", MODES)
def test_every_execution_mode_gives_the_row_decode_s_records(execution, monkeypatch):
    serde = _serde()
    msgs = [serde.serialize(r) for r in _records()]
    _, plain = _run(_topology("row", serde, schema=None), msgs)  # no schema: decoded row-wise
    calls = _spy(monkeypatch)
    _, got = _run(_topology(execution, serde), msgs)
    assert got == plain
    assert calls == [(12, [12])]  # the batch decoded once, into one Arrow batch
    expected = [r for r in _records() if r["amount"] > 10]
    assert [(v["user"], v["cents"], t) for _, v, t in got["big"]] == [
        (r["user"], r["amount"] * 100, r["ts"]) for r in expected
    ]
    assert sum(v["n"] for _, v, _ in got["counts"]) == len(expected)


def test_keys_and_kafka_timestamps_are_each_record_s():
    reg = InMemoryRegistry()
    serde = _serde(reg)
    t = st.Topology("avro-meta", execution="columnar")
    src = t.source("in", key=st.serde.STR, value=AvroSerde(reg), schema="infer")
    src.filter(st.col("amount") >= 0).to("out", key=st.serde.STR)
    d = TopologyTestDriver(t)
    recs = _records()[:4]
    for i, r in enumerate(recs):
        d.broker.append("in", 0, f"key-{i}".encode(), serde.serialize(r), 1000 - i)
    d._run()
    assert [(r.key, r.value, r.timestamp) for r in d.read("out")] == [
        (f"key-{i}", r, 1000 - i) for i, r in enumerate(recs)
    ]


def test_records_with_attributes_decode_like_tuples():
    class Rec:  # (aiokafka's ConsumerRecord has attributes, not indexes)
        def __init__(self, *xs):
            self.key, self.value, self.timestamp, self.headers, self.offset = xs

    serde = _serde()
    tuples = [(b"k", serde.serialize(r), 5 + i, (), i) for i, r in enumerate(_records())]
    d = Decoder("s", "in", 0, st.serde.STR, serde, None, schema="infer")
    assert d.decode([Rec(*m) for m in tuples]) == d.decode(tuples)
    assert d.decode(tuples) == [("k", r, 5 + i, (), i) for i, r in enumerate(_records())]


def test_a_timestamp_logical_type_is_the_event_time_in_every_mode():
    schema = {
        "type": "record",
        "name": "E",
        "fields": [
            {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "n", "type": "int"},
        ],
    }
    serde = _serde(schema=schema)
    t0 = datetime.datetime(2024, 5, 1, tzinfo=datetime.UTC)
    recs = [{"at": t0 + datetime.timedelta(milliseconds=250 * i), "n": i} for i in range(6)]
    out = {}
    for mode in [*MODES, None]:
        t = st.Topology("avro-ts", execution=mode or "row")
        s = t.source("in", value=serde, timestamp=st.col("at"), schema=mode and "infer")
        s.key_by(st.col("n") % 2).window("w", windows.tumbling(ms=1000)).count().to(
            "c", key=st.serde.JSON
        )
        d = TopologyTestDriver(t)
        d.pipe_many("in", recs)
        d.end_of_input()
        out[mode] = sorted((r.key, r.value["window_start"], r.value["n"]) for r in d.read("c"))
    assert out["row"] == out["auto"] == out["columnar"] == out[None]
    start = int(t0.timestamp() * 1000)
    assert {ws for _, ws, _ in out[None]} == {start, start + 1000}


def _evolution_msgs(reg):
    v1, v2 = _serde(reg, V1), _serde(reg, V2)
    recs = _records()[:6]
    out, want = [], []
    for i, r in enumerate(recs):  # v1, v2, v1, v2, ...
        if i % 2:
            r = {**r, "note": f"n{i}"}
            out.append(v2.serialize(r))
        else:
            out.append(v1.serialize(r))
        want.append(r)
    return out, want


@pytest.mark.parametrize("execution", MODES)
def test_two_writer_schemas_in_one_batch_unify(execution):
    reg = InMemoryRegistry()
    msgs, want = _evolution_msgs(reg)
    assert len({m[:5] for m in msgs}) == 2  # two schema ids
    t = st.Topology("avro-evo", execution=execution)
    t.source("in", value=AvroSerde(reg), schema="infer").to("out")
    _, out = _run(t, msgs)
    # one batch; a record of the older writer has no note: null
    assert [v for _, v, _ in out["out"]] == [{"note": None, **w} for w in want]


@pytest.mark.parametrize("execution", MODES)
def test_with_a_reader_schema_every_record_is_resolved_into_it(execution):
    reg = InMemoryRegistry()
    msgs, want = _evolution_msgs(reg)
    t = st.Topology("avro-evo", execution=execution)
    t.source("in", value=AvroSerde(reg, reader_schema=V2), schema="infer").to("out")
    _, out = _run(t, msgs)
    reader = AvroSerde(reg, reader_schema=V2)
    assert [v for _, v, _ in out["out"]] == [reader.deserialize(m) for m in msgs]
    assert [v for _, v, _ in out["out"]] == [{"note": None, **w} for w in want]


def test_writer_schemas_arrow_cannot_unify_are_one_batch_per_run_in_order():
    reg = InMemoryRegistry()
    narrow = {**V1, "fields": [{"name": "amount", "type": "int"}]}  # int32, then int64
    wide = {**V1, "fields": [{"name": "amount", "type": "long"}]}
    a, b = _serde(reg, narrow), _serde(reg, wide)
    msgs = [a.serialize({"amount": 1}), a.serialize({"amount": 2}), b.serialize({"amount": 3})]
    msgs.append(a.serialize({"amount": 4}))
    raw = [(None, m, 0, (), i) for i, m in enumerate(msgs)]
    batches = ArrowAvroDecoder(AvroSerde(reg), "infer", None, "in", 0).batches(raw)
    assert [b.n for b in batches] == [2, 1, 1]
    assert [r[1] for b in batches for r in b.to_rows()] == [
        AvroSerde(reg).deserialize(m) for m in msgs
    ]
    assert [b.base["amount"].type for b in batches] == [pa.int32(), pa.int64(), pa.int32()]


EVERY = {
    "type": "record",
    "name": "Every",
    "namespace": "t",
    "fields": [
        {"name": "nothing", "type": "null"},
        {"name": "flag", "type": "boolean"},
        {"name": "i", "type": "int"},
        {"name": "l", "type": "long"},
        {"name": "f", "type": "float"},
        {"name": "d", "type": "double"},
        {"name": "b", "type": "bytes"},
        {"name": "s", "type": "string"},
        {"name": "e", "type": {"type": "enum", "name": "Color", "symbols": ["RED", "BLUE"]}},
        {"name": "fx", "type": {"type": "fixed", "name": "Four", "size": 4}},
        {"name": "fx2", "type": "Four"},  # (a named type used again)
        {"name": "opt", "type": ["null", "long"]},
        {"name": "opt_last", "type": ["string", "null"]},
        {"name": "arr", "type": {"type": "array", "items": ["null", "string"]}},
        {
            "name": "rec",
            "type": {
                "type": "record",
                "name": "Inner",
                "fields": [
                    {"name": "x", "type": "int"},
                    {"name": "tags", "type": {"type": "array", "items": "string"}},
                ],
            },
        },
        {"name": "recs", "type": {"type": "array", "items": "Inner"}},
        {"name": "opt_rec", "type": ["null", "Inner"]},
        {"name": "ts_ms", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "ts_us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "lts_ms", "type": {"type": "long", "logicalType": "local-timestamp-millis"}},
        {"name": "lts_us", "type": {"type": "long", "logicalType": "local-timestamp-micros"}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "t_ms", "type": {"type": "int", "logicalType": "time-millis"}},
        {"name": "t_us", "type": {"type": "long", "logicalType": "time-micros"}},
        {
            "name": "dec",
            "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2},
        },
        {
            "name": "fdec",
            "type": {
                "type": "fixed",
                "name": "D8",
                "size": 8,
                "logicalType": "decimal",
                "precision": 12,
                "scale": 3,
            },
        },
        {
            "name": "bigdec",
            "type": {"type": "bytes", "logicalType": "decimal", "precision": 50, "scale": 5},
        },
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "opt_ts", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}]},
        {"name": "odd", "type": {"type": "string", "logicalType": "no-such-type"}},
    ],
}


def _every(i):
    utc = datetime.UTC
    return {
        "nothing": None,
        "flag": i % 2 == 0,
        "i": -(2**31) + i,
        "l": 2**62 + i,
        "f": 1.1 * i,
        "d": 2.5 / (i + 1),
        "b": bytes([i, 0, 255]),
        "s": f"s\u00e9{i}",
        "e": ["RED", "BLUE"][i % 2],
        "fx": b"abcd",
        "fx2": bytes([i] * 4),
        "opt": None if i % 2 else i,
        "opt_last": None if i % 2 == 0 else "x",
        "arr": ["a", None] if i else [],
        "rec": {"x": i, "tags": ["t"] * i},
        "recs": [{"x": j, "tags": []} for j in range(i)],
        "opt_rec": None if i % 2 else {"x": -i, "tags": ["q"]},
        "ts_ms": datetime.datetime(2024, 1, 2, 3, 4, 5, 6000 * (i + 1), tzinfo=utc),
        "ts_us": datetime.datetime(1969, 12, 31, 23, 59, 59, 999999 - i, tzinfo=utc),
        "lts_ms": datetime.datetime(2024, 1, 2, 3, 4, 5, 1000 * i),
        "lts_us": datetime.datetime(2001, 9, 9, 1, 46, 40, i),
        "day": datetime.date(1970, 1, 1) + datetime.timedelta(days=19000 - 40000 * i),
        "t_ms": datetime.time(23, 59, 59, 999000 - 1000 * i),
        "t_us": datetime.time(0, 0, 0, i),
        "dec": decimal.Decimal(f"-{i}1234.5{i}"),
        "fdec": decimal.Decimal(f"{i}.25"),
        "bigdec": decimal.Decimal("1" * 40 + ".12345") * (i + 1),
        "id": uuid.UUID(int=i * 2**100 + 7),
        "opt_ts": None if i % 2 else datetime.datetime(2020, 2, 29, tzinfo=utc),
        "odd": "just a string",
    }


def same(a, b):
    """Equal, and of the same types all the way down (a datetime's tzinfo too)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, datetime.datetime | datetime.time):
        return a == b and a.tzinfo is b.tzinfo
    if isinstance(a, decimal.Decimal):
        return a.as_tuple() == b.as_tuple()
    return a == b


def test_every_mapped_type_gives_back_what_the_serde_gives():
    serde = _serde(schema=EVERY)
    msgs = [(b"k", serde.serialize(_every(i)), i, (), i) for i in range(3)]
    [batch] = ArrowAvroDecoder(serde, "infer", st.serde.STR, "in", 0).batches(msgs)
    want = [serde.deserialize(m[1]) for m in msgs]
    got = [r[1] for r in batch.to_rows()]
    assert all(same(g, w) for g, w in zip(got, want, strict=True)), (got, want)
    types = {f.name: f.type for f in arrow_schema(serde.writer_schema(serde.schema_id))}
    assert types["i"] == pa.int32() and types["e"] == pa.string() and types["fx"] == pa.binary(4)
    assert types["ts_ms"] == pa.timestamp("ms", tz="+00:00") and types["day"] == pa.date32()
    assert types["dec"] == pa.decimal128(10, 2) and types["bigdec"] == pa.decimal256(50, 5)
    assert types["opt_rec"] == types["rec"] and pa.types.is_struct(types["rec"])


@pytest.mark.parametrize(
    "field",
    [
        {"name": "u", "type": ["long", "string"]},  # a union of two types
        {"name": "u", "type": ["null", "long", "string"]},
        {"name": "m", "type": {"type": "map", "values": "long"}},  # maps come back as pairs
        {"name": "next", "type": ["null", "Tx"]},  # recursive
    ],
    ids=["union", "nullable-union", "map", "recursive"],
)
def test_what_arrow_cannot_hold_exactly_decodes_row_by_row(field, monkeypatch, caplog):
    schema = {**V1, "fields": [*V1["fields"], field]}
    serde = _serde(schema=schema)
    value = {"u": 5, "m": {"a": 1}, "next": None}[field["name"]]
    empty = {} if field["name"] == "m" else None
    recs = [{**r, field["name"]: value if i % 2 else empty} for i, r in enumerate(_records())]
    if field["name"] == "u":
        recs = [{**r, "u": [i, f"s{i}"][i % 2]} for i, r in enumerate(recs)]
    if field["name"] == "next":
        recs[1]["next"] = {**recs[0], "next": None}
    msgs = [serde.serialize(r) for r in recs]
    with pytest.raises(Unsupported):
        arrow_schema(serde.writer_schema(serde.schema_id))
    _, plain = _run(_topology("row", serde, schema=None), msgs)
    calls = _spy(monkeypatch)
    with caplog.at_level(logging.DEBUG, logger="streams.source"):
        for mode in MODES:
            t = st.Topology("avro-u", execution=mode)
            t.source("in", value=serde, schema="infer").to("out")
            _, out = _run(t, msgs)
            assert [v for _, v, _ in out["out"]] == [serde.deserialize(m) for m in msgs]
            _, got = _run(_topology(mode, serde), msgs)
            assert got == plain
    assert calls and all(c == (12, "unsupported") for c in calls)
    assert sum("decode row by row" in r.message for r in caplog.records) == 2 * len(MODES)


def _bad_messages(reg):
    good = _serde(reg)
    cut = good.serialize(_records()[0])
    return {
        "junk": b"not avro at all",
        "truncated": cut[:-2],
        "trailing": cut + b"\x00",
        "unknown-id": confluent_header(999) + cut[5:],
        "null": None,
    }


@pytest.mark.parametrize("kind", ["junk", "truncated", "trailing", "unknown-id", "null"])
def test_an_undecodable_message_goes_to_the_dead_letter_topic_with_its_bytes(kind):
    reg = InMemoryRegistry()
    serde = _serde(reg)
    msgs = [serde.serialize(r) for r in _records()]
    bad = _bad_messages(reg)[kind]
    msgs.insert(3, bad)
    _, plain = _run(_topology("row", serde, schema=None), [m for m in msgs if m is not bad])
    d, got = _run(_topology("columnar", AvroSerde(reg), on_error="dead_letter"), msgs)
    assert len(got["big"]) == len(plain["big"])  # the good messages' records, all of them
    assert [v for _, v, _ in got["big"]] == [v for _, v, _ in plain["big"]]
    dlq = d.broker.fetch(TopicPartition("avro-dlq", 0), 0)
    assert [(m.key, m.value) for m in dlq] == [(b"k3", bad)]
    headers = dict(dlq[0].headers)
    assert headers["streams.error.type"] == b"SerializationError"
    assert headers["streams.source.offset"] == b"3"


@pytest.mark.parametrize("kind", ["junk", "truncated", "trailing", "unknown-id", "null"])
def test_an_undecodable_message_fails_naming_its_offset_by_default(kind):
    reg = InMemoryRegistry()
    serde = _serde(reg)
    msgs = [serde.serialize(r) for r in _records()]
    msgs.insert(5, _bad_messages(reg)[kind])
    with pytest.raises(st.SerializationError, match="topic 'in', partition 0, offset 5"):
        _run(_topology("columnar", AvroSerde(reg)), msgs)


@pytest.mark.parametrize("execution", MODES)
def test_a_declared_schema_drops_and_nulls_fields(execution):
    serde = _serde()
    declared = pa.schema([("amount", pa.int64()), ("user", pa.string()), ("ts", pa.int64())])
    declared = declared.append(pa.field("region", pa.string()))
    t = st.Topology("avro-decl", execution=execution)
    t.source("in", value=serde, schema=declared.remove(2)).to("out")  # (no ts)
    _, out = _run(t, [serde.serialize(r) for r in _records()])
    want = [{"amount": r["amount"], "user": r["user"], "region": None} for r in _records()]
    assert [v for _, v, _ in out["out"]] == want


def test_a_value_that_does_not_fit_the_declared_type_names_its_record():
    serde = _serde()
    declared = pa.schema([("user", pa.string()), ("amount", pa.int8())])
    recs = _records()[:4]
    recs[2]["amount"] = 1000  # beyond int8
    t = st.Topology("avro-decl")
    t.source("in", value=serde, schema=declared).to("out")
    with pytest.raises(st.SerializationError, match=r"offset 2: .*'amount'.*int8"):
        _run(t, [serde.serialize(r) for r in recs])


def test_a_declared_schema_is_narrowed_to_the_fields_steps_read():
    serde = _serde()
    declared = pa.schema([("user", pa.string()), ("amount", pa.int64()), ("ts", pa.int64())])
    t = st.Topology("avro-narrow", execution="columnar")
    s = t.source("in", value=serde, schema=declared, timestamp=st.col("ts"))
    s.select("amount").to("out")
    [inp] = t.compile().subtopologies[0].inputs.values()
    assert inp.schema.names == ["amount", "ts"]
    _, out = _run(t, [serde.serialize(r) for r in _records()])
    assert [v for _, v, _ in out["out"]] == [{"amount": r["amount"]} for r in _records()]


def test_a_schema_needs_json_or_avro_values():
    t = st.Topology("x")
    with pytest.raises(st.TopologyError, match="step 'source-in'.*JSON or Avro.*msgpack"):
        t.source("in", value=MSGPACK, schema="infer")
    t.source("ok", value=_serde(topic="ok"), schema="infer")
    assert "schema=inferred" in t.node("source-ok").detail()


# -- property: random flat schemas ----------------------------------------------------------

_I32, _I64 = hs.integers(-(2**31), 2**31 - 1), hs.integers(-(2**63), 2**63 - 1)
_UTC = datetime.UTC
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=_UTC)
_FLAT = {
    "null": ("null", hs.none()),
    "boolean": ("boolean", hs.booleans()),
    "int": ("int", _I32),
    "long": ("long", _I64),
    "float": ("float", hs.floats(width=32, allow_nan=False)),
    "double": ("double", hs.floats(allow_nan=False)),
    "bytes": ("bytes", hs.binary(max_size=8)),
    "string": ("string", hs.text(max_size=8)),
    "enum": ({"type": "enum", "name": "E", "symbols": ["A", "B", "C"]}, hs.sampled_from("ABC")),
    "fixed": ({"type": "fixed", "name": "F3", "size": 3}, hs.binary(min_size=3, max_size=3)),
    "ts-ms": (
        {"type": "long", "logicalType": "timestamp-millis"},
        hs.integers(-(10**11), 10**13).map(lambda ms: _EPOCH + datetime.timedelta(milliseconds=ms)),
    ),
    "ts-us": (
        {"type": "long", "logicalType": "timestamp-micros"},
        hs.datetimes(timezones=hs.just(_UTC)),
    ),
    "date": ({"type": "int", "logicalType": "date"}, hs.dates()),
    "time-ms": (
        {"type": "int", "logicalType": "time-millis"},
        hs.times().map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000)),
    ),
    "time-us": ({"type": "long", "logicalType": "time-micros"}, hs.times()),
    "decimal": (
        {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 3},
        hs.decimals(min_value=-999999, max_value=999999, places=3, allow_nan=False),
    ),
    "uuid": ({"type": "string", "logicalType": "uuid"}, hs.uuids()),
    "array": ({"type": "array", "items": "long"}, hs.lists(_I64, max_size=3)),
}


@hs.composite
def _schema_and_records(draw):
    kinds = draw(hs.lists(hs.sampled_from(sorted(_FLAT)), min_size=1, max_size=6, unique=True))
    nullable = draw(hs.lists(hs.booleans(), min_size=len(kinds), max_size=len(kinds)))
    fields, strategies = [], {}
    for i, (k, opt) in enumerate(zip(kinds, nullable, strict=True)):
        avro, strat = _FLAT[k]
        fields.append({"name": f"f{i}", "type": ["null", avro] if opt else avro})
        strategies[f"f{i}"] = hs.one_of(hs.none(), strat) if opt else strat
    schema = {"type": "record", "name": "R", "fields": fields}
    records = draw(hs.lists(hs.fixed_dictionaries(strategies), min_size=1, max_size=6))
    return schema, records


@settings(max_examples=150, deadline=None)
@given(_schema_and_records())
def test_random_flat_records_give_back_what_the_serde_gives(case):
    schema, records = case
    serde = _serde(schema=schema)
    msgs = [(None, serde.serialize(r), 0, (), i) for i, r in enumerate(records)]
    [batch] = ArrowAvroDecoder(serde, "infer", None, "in", 0).batches(msgs)
    for (_, got, *_), m in zip(batch.to_rows(), msgs, strict=True):
        want = serde.deserialize(m[1])
        assert same(got, want), (got, want)
