"""Field names are checked where the schema is known, counted where it is not, and async
functions are refused by synchronous steps (see docs/concepts/topology.md)."""

import functools
import logging

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

import streams as st
from streams import agg, windows
from streams.core.serdes.avro import AvroSerde
from streams.core.serdes.jsonschema import JsonSchemaSerde
from streams.core.serdes.registry import InMemoryRegistry
from streams.plan import nodes as plan

SCHEMA = pa.schema([("amount", pa.float64()), ("card", pa.string()), ("ts", pa.int64())])
FIELDS = "(fields: amount, card, ts)"


def _source(name: str = "x", **kw):
    t = st.Topology(name)
    return t, t.source("payments", schema=SCHEMA, **kw)


def _raises(step: str, field: str, fields: str = FIELDS, hint: str | None = None):
    msg = f"step '{step}': field '{field}' is not in the schema of its input {fields}"
    if hint is not None:
        msg += f"; did you mean '{hint}'?"
    return pytest.raises(st.TopologyError, match=f"^{_re(msg)}$")


def _re(s: str) -> str:
    import re

    return re.escape(s)


# -- the examples: typos against a source's schema= -----------------------------------
def test_filter_typo():
    t, s = _source()
    with _raises("filter-1", "amuont", hint="amount"):
        s.filter(st.col("amuont") > 5)
    assert [n.step for n in t.nodes] == ["source-payments"]  # nothing was added


def test_with_columns_typo():
    _, s = _source()
    with _raises("with-columns-1", "amuont", hint="amount"):
        s.with_columns(double=st.col("amuont") * 2)


def test_agg_sum_typo_is_caught_before_the_repartition_is_added():
    t, s = _source()
    keyed = s.key_by("card")
    with _raises("total", "amuont", hint="amount"):
        keyed.aggregate("total", agg.sum("amuont"))
    assert [n.step for n in t.nodes] == ["source-payments", "key-by-1"]
    keyed.aggregate("total", agg.sum("amount"))  # the same id, fixed, builds


def test_key_by_typo():
    _, s = _source()
    with _raises("key-by-1", "crad", hint="card"):
        s.key_by("crad")


@pytest.mark.parametrize(
    ("build", "step", "field"),
    [
        (lambda s: s.select("amount", "crad"), "select-1", "crad"),
        (lambda s: s.with_columns(c=st.when(st.col("tss") > 1, 1).otherwise(0)), None, "tss"),
        (lambda s: s.map_values(st.col("card").starts_with("x") & st.col("amout")), None, "amout"),
        (lambda s: s.branch(st.col("amount") > 1, st.col("crd").is_null()), "branch-1", "crd"),
        (lambda s: s.filter_not(st.col("ts").is_in([1]) | st.col("tz").is_null()), None, "tz"),
        (lambda s: s.key_by("card").aggregate("a", m=agg.mean("amunt")), "a", "amunt"),
        (lambda s: s.key_by("card").aggregate("a", m=agg.min("amunt")), "a", "amunt"),
        (lambda s: s.key_by("card").aggregate("a", m=agg.max(st.col("amunt") * 2)), "a", "amunt"),
        (lambda s: s.key_by("card").aggregate("a", m=agg.collect("amunt")), "a", "amunt"),
        (lambda s: s.key_by("card").aggregate("a", m=agg.first("amunt")), "a", "amunt"),
        (lambda s: s.key_by("card").aggregate("a", m=agg.last("amunt")), "a", "amunt"),
        (lambda s: s.key_by("card").aggregate("a", m=agg.argmax("amount", ["cad"])), "a", "cad"),
        (
            lambda s: s.window("w", windows.tumbling(seconds=1)).aggregate(agg.sum("amunt")),
            "w",
            "amunt",
        ),
        (lambda s: s.to_parquet("/tmp/never", partition_by=["crd"]), None, "crd"),
    ],
)
def test_every_place_a_field_is_read(build, step, field):
    _, s = _source()
    with pytest.raises(st.TopologyError, match=f"field '{field}' is not in the schema") as e:
        build(s)
    if step is not None:
        assert str(e.value).startswith(f"step '{step}': ")


def test_a_source_timestamp_is_checked_against_its_own_schema():
    with _raises("source-payments", "tss", hint="ts"):
        _source(timestamp="tss")
    _source(timestamp=st.col("ts") * 1000)


def test_fields_follow_the_plan():
    t, s = _source()
    w = s.with_columns(cents=st.col("amount") * 100)
    sel = w.select("card", eur=st.col("amount"))
    with _raises("typo", "cents", "(fields: card, eur)"):
        sel.filter(st.col("cents") > 1, name="typo")
    stats = w.key_by("card").aggregate("stats", n=agg.count(), cents=agg.sum("cents"))
    win = w.key_by("card").window("win", windows.tumbling(seconds=1))
    counts = win.aggregate(agg.count())
    late = win.late()
    lp = t.logical_plan()
    assert lp.schema_of(w.step) == ("amount", "card", "ts", "cents")
    assert lp.schema_of(sel.step) == ("card", "eur")
    assert lp.schema_of(stats.step) == ("n", "cents")
    assert lp.schema_of(counts.step) == ("value", "window_start", "window_end")
    assert lp.schema_of(late.step) == ("amount", "card", "ts", "cents")
    single = s.key_by("card").count("single")
    mapped = s.map_values(lambda v: v)
    lp = t.logical_plan()
    assert lp.schema_of(single.step) is None  # a count, not a record
    assert lp.schema_of(mapped.step) is None
    with _raises("typo", "nn", "(fields: n, cents)", "n"):
        stats.filter(st.col("nn") > 1, name="typo")


def test_merge_knows_the_union_of_known_sides():
    t, s = _source()
    a = s.select("amount", "card")
    b = s.select("card", "ts")
    both = a.merge(b)
    assert t.logical_plan().schema_of(both.step) == ("amount", "card", "ts")
    with _raises("filter-4", "x", "(fields: amount, card, ts)"):
        both.filter(st.col("x") > 1)
    other = s.map_values(lambda v: v).merge(a)
    assert t.logical_plan().schema_of(other.step) is None
    other.filter(st.col("anything") > 1)  # unknown: checked at run time


def test_unknown_schemas_build_anything():
    t = st.Topology("free")
    s = t.source("in")
    s.filter(st.col("amuont") > 1).key_by("crad").aggregate("a", agg.sum("x"))
    t.source("inferred", schema="infer").filter(st.col("whatever") > 1)
    t.compile()


def test_avro_reader_schema_declares_fields():
    reader = {
        "type": "record",
        "name": "P",
        "fields": [{"name": "amount", "type": "double"}, {"name": "card", "type": "string"}],
    }
    t = st.Topology("avro")
    s = t.source("p", value=AvroSerde(InMemoryRegistry(), reader_schema=reader))
    with _raises("key-by-1", "crad", "(fields: amount, card)", "card"):
        s.key_by("crad")
    s.key_by("card")
    t.source("q", value=AvroSerde(InMemoryRegistry())).key_by("crad")  # as written: unknown


def test_json_schema_properties_declare_fields():
    schema = {
        "type": "object",
        "properties": {"amount": {"type": "number"}, "card": {"type": "string"}},
        "required": ["card"],
    }
    t = st.Topology("js")
    s = t.source("p", value=JsonSchemaSerde(schema))
    with _raises("filter-1", "amonut", "(fields: amount, card)", "amount"):
        s.filter(st.col("amonut") > 1)


def test_a_table_and_its_joins():
    schema = {"type": "object", "properties": {"limit": {"type": "number"}}}
    t = st.Topology("tables")
    cards = t.table("cards", value=JsonSchemaSerde(schema))
    with _raises("table-filter-1", "limt", "(fields: limit)", "limit"):
        cards.filter(st.col("limt") > 1)
    s = t.source("tx", schema=SCHEMA)
    g = t.global_table("merchants")
    with _raises("join-2", "merchnt", FIELDS):
        s.join(g, lambda v, m: v, key="merchnt")
    orders = t.table("orders", value=JsonSchemaSerde({"properties": {"card": {}}}))
    with _raises("fk-subscribe", "crd", "(fields: card)", "card"):
        orders.join_on(cards, "crd", lambda o, c: o, name="fk")


def test_replace_rechecks_the_steps_below():
    t = st.Topology("swap")
    s = t.source("in")
    s.filter(st.col("n") > 1)
    with _raises("filter-1", "n", FIELDS):
        t.builder.replace(plan.Source(step="source-in", parents=(), topic="in", schema=SCHEMA))
    assert t.node("source-in").schema is None  # unchanged


def test_describe_shows_known_fields():
    _, s = _source()
    s.select("card", eur=st.col("amount")).to("out")
    text = s.topology.describe()
    assert "<- payments  fields: amount, card, ts" in text
    assert "fields: card, eur" in text


# -- where nothing is known: counted at run time, warned once per step ------------------------
@pytest.mark.parametrize("execution", ["row", "columnar"])
def test_a_field_no_record_has_is_counted_and_warned_once(execution, caplog):
    t = st.Topology("rt", execution=execution)
    s = t.source("p")
    s.filter(st.col("amuont") > 5).to("big")
    s.with_columns(eur=st.col("amount"), x=st.col("xx")).to("tagged")
    d = st.TopologyTestDriver(t)
    with caplog.at_level(logging.WARNING, "streams.drops"):
        d.pipe_many("p", [(f"k{i}", {"amount": i}, i) for i in range(4)])
        d.pipe_many("p", [(f"k{i}", {"amount": i}, 10 + i) for i in range(3)])
        d.pipe("p", {"amount": 1, "amuont": 9, "xx": 1})  # present: not counted
    drops = d.tasks[next(iter(d.tasks))].drops
    assert drops.counts == {
        ("filter-1", "missing_field"): 7,
        ("with-columns-3", "missing_field"): 7,
    }
    warned = [r.getMessage() for r in caplog.records if r.name == "streams.drops"]
    assert len([m for m in warned if "filter-1" in m]) == 1
    assert "'amuont': in no record of a batch" in next(m for m in warned if "filter-1" in m)
    assert len([m for m in warned if "with-columns-3" in m]) == 1
    assert "'xx'" in next(m for m in warned if "with-columns-3" in m)
    assert d.read_values("big") == [{"amount": 1, "amuont": 9, "xx": 1}]


@pytest.mark.parametrize("execution", ["row", "columnar"])
def test_fields_read_after_a_filter_are_not_counted_when_it_dropped_the_batch(execution):
    """A batch of bids only: the persons filter drops them all, so the key_by after it reads
    no record, and 'id' missing from the bids is no mistake (Nexmark q8's shape)."""
    t = st.Topology("sub", execution=execution)
    people = t.source("ev").filter(st.col("type") == "person").key_by("id")
    people.select("name").to("people")
    d = st.TopologyTestDriver(t)
    d.pipe_many("ev", [{"type": "bid", "price": i} for i in range(5)])
    d.pipe("ev", {"type": "person", "id": "p7", "name": "ann"})
    assert d.dropped == {}
    assert d.read_values("people") == [{"name": "ann"}]


def test_a_field_some_records_have_is_not_counted():
    t = st.Topology("some")
    t.source("p").filter(st.col("vip")).to("out")
    d = st.TopologyTestDriver(t)
    d.pipe_many("p", [("a", {"n": 1}, 0), ("b", {"vip": True}, 1)])
    assert all(not task.drops.counts for task in d.tasks.values())
    assert d.read_values("out") == [{"vip": True}]


# -- random topologies -------------------------------------------------------------------------
POOL = ("amount", "card", "ts", "country", "merchant", "qty")


@hs.composite
def topologies(draw):
    """(ops, source fields, index of the typo or None): a chain over a random schema."""
    fields = draw(hs.lists(hs.sampled_from(POOL), min_size=1, max_size=6, unique=True))
    n = draw(hs.integers(1, 5))
    typo_at = draw(hs.one_of(hs.none(), hs.integers(0, n - 1)))
    ops, have, keyed = [], list(fields), False
    for i in range(n):
        kind = draw(hs.sampled_from(["filter", "with_columns", "select", "key_by", "aggregate"]))
        pick = draw(hs.sampled_from(have))
        if i == typo_at:
            pick = draw(hs.sampled_from([pick + "x", "x" + pick, pick[1:] + pick[0], "zz"]))
            if pick in have:
                pick = "zz_" + pick
        if kind == "filter":
            ops.append(("filter", pick))
        elif kind == "with_columns":
            new = draw(hs.sampled_from(["w1", "w2", *have]))
            ops.append(("with_columns", new, pick))
            have = list(dict.fromkeys([*have, new]))
        elif kind == "select":
            rest = draw(hs.lists(hs.sampled_from(have), max_size=3, unique=True))
            ops.append(("select", pick, rest))
            have = list(dict.fromkeys([pick, *rest]))
        elif kind == "key_by":
            ops.append(("key_by", pick))
            keyed = True
        else:
            ops.append(("aggregate", f"agg-{i}", pick, keyed))
            have = ["total", "n"]
        if i == typo_at:
            break
    return ops, fields, typo_at


def _build(ops, fields):
    t = st.Topology("prop")
    s = t.source("in", schema=pa.schema([(f, pa.int64()) for f in fields]))
    for op in ops:
        if op[0] == "filter":
            s = s.filter(st.col(op[1]) > 0)
        elif op[0] == "with_columns":
            s = s.with_columns(**{op[1]: st.col(op[2]) + 1})
        elif op[0] == "select":
            s = s.select(*dict.fromkeys([op[1], *op[2]]))
        elif op[0] == "key_by":
            s = s.key_by(op[1])
        else:
            s = s.aggregate(op[1], total=agg.sum(op[2]), n=agg.count())
    s.to("out")
    return t


@settings(max_examples=300, deadline=None)
@given(topologies())
def test_random_typos_never_build_and_valid_plans_compile(case):
    ops, fields, typo_at = case
    if typo_at is None:
        _build(ops, fields).compile()
        return
    with pytest.raises(st.TopologyError, match="is not in the schema of its input") as e:
        _build(ops, fields)
    bad = ops[typo_at]
    field = bad[2] if bad[0] in ("with_columns", "aggregate") else bad[1]
    assert f"field '{field}'" in str(e.value)


# -- async functions ---------------------------------------------------------------------------
async def _coro(*args):
    return args


async def _agen(*args):
    yield args


class _AsyncCall:
    async def __call__(self, *args):
        return args


ASYNC = [_coro, _agen, functools.partial(_coro), _AsyncCall(), functools.partial(_AsyncCall())]


@pytest.mark.parametrize("fn", ASYNC, ids=["coroutine", "async-gen", "partial", "call", "p-call"])
@pytest.mark.parametrize(
    "entry",
    [
        lambda s, f: s.filter(f),
        lambda s, f: s.filter_not(f),
        lambda s, f: s.map(f),
        lambda s, f: s.map_values(f),
        lambda s, f: s.flat_map(f),
        lambda s, f: s.flat_map_values(f),
        lambda s, f: s.peek(f),
        lambda s, f: s.key_by(f),
        lambda s, f: s.group_by(f),
        lambda s, f: s.branch(lambda v: True, f),
        lambda s, f: s.with_columns(x=f),
        lambda s, f: s.select(x=f),
        lambda s, f: s.process("p", f),
        lambda s, f: s.process("p", lambda ctx: None, on_timer=f),
        lambda s, f: s.reduce("r", f),
        lambda s, f: s.aggregate("a", agg.sum(f)),
        lambda s, f: s.aggregate("a", agg.reduce(f)),
        lambda s, f: s.aggregate("a", agg.custom(init=lambda: 0, add=f)),
        lambda s, f: s.aggregate("a", agg.custom(init=f, add=lambda a, v: a)),
        lambda s, f: s.window("w", windows.tumbling(seconds=1)).reduce(f),
        lambda s, f: s.join(s.topology.table("t"), f),
        lambda s, f: s.join(s.topology.global_table("g"), lambda v, g: v, key=f),
        lambda s, f: s.join(s.topology.source("o"), f, window=windows.join_window(1), name="j"),
        lambda s, f: s.topology.table("t").map_values(f),
        lambda s, f: s.topology.table("t").filter(f),
        lambda s, f: s.topology.table("t").join(s.topology.table("u"), f),
        lambda s, f: s.topology.table("t").join_on(s.topology.table("u"), f, max, name="fk"),
        lambda s, f: s.topology.source("ts", timestamp=f),
    ],
)
def test_async_functions_are_refused(entry, fn):
    t = st.Topology("async")
    s = t.source("in")
    with pytest.raises(st.TopologyError, match="is an async function; steps call their"):
        entry(s, fn)


def test_the_async_error_names_the_step_and_what_to_do():
    t = st.Topology("async")
    with pytest.raises(st.TopologyError) as e:
        t.source("in").map_values(_coro, name="score")
    msg = str(e.value)
    assert msg.startswith("step 'score': function _coro is an async function; ")
    assert "map_async" in msg and "docs/how-to/call-a-service.md" in msg  # where it goes
    with pytest.raises(st.TopologyError, match="predicate partial\\(_AsyncCall object\\)"):
        t.source("in2").filter(functools.partial(_AsyncCall()))


def test_plain_callables_still_pass():
    class Call:
        def __call__(self, v):
            return v

    t = st.Topology("sync")
    t.source("in").filter(Call()).map_values(functools.partial(lambda v: v)).to("out")
    t.compile()
