"""Columnar chains give exactly the records row chains give.

Random records (typed fields, nulls, missing fields, NaN, int64 extremes and beyond) through
random chains of expression steps, run with ``execution="row"`` and ``execution="columnar"``
(one batch each, so Arrow sees the whole batch); the output bytes must be equal. A source with
a schema (values decoded straight into Arrow, encoded from Arrow by the sink) is compared the
same way.
"""

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as hs

import streams as st
from streams.testing import TopologyTestDriver
from tests.streams.test_expr_arrow import boolean, num, string

ints = hs.one_of(hs.none(), hs.integers(-20, 20), hs.integers(-(2**63), 2**63 - 1))
values = hs.fixed_dictionaries(
    {},
    optional={
        "i": ints,
        "j": hs.one_of(ints, hs.just(2**70)),
        "f": hs.one_of(hs.none(), hs.floats(allow_nan=False), hs.just(1e300)),
        "s": hs.one_of(hs.none(), hs.text(alphabet='ab-_1" \\\n', max_size=6)),
        "b": hs.one_of(hs.none(), hs.booleans()),
    },
)
step = hs.one_of(
    hs.tuples(hs.just("filter"), boolean),
    hs.tuples(hs.just("filter_not"), boolean),
    hs.tuples(hs.just("with_columns"), hs.sampled_from("ijfsbx"), hs.one_of(num, string, boolean)),
    hs.tuples(hs.just("select"), hs.sampled_from("ijfsbx"), hs.one_of(num, string, boolean)),
    hs.tuples(hs.just("key_by"), hs.one_of(num, string)),
    hs.tuples(hs.just("map_values"), hs.one_of(num, string, boolean)),
    # key(): the keys a key_by computed (or the source's, null here), read as a column
    hs.tuples(hs.just("with_columns"), hs.sampled_from("ijx"), hs.just(st.key())),
    hs.tuples(hs.just("filter"), hs.just(st.key().is_not_null())),
)
SCHEMA = pa.schema(
    [
        ("i", pa.int64()),
        ("j", pa.int64()),
        ("f", pa.float64()),
        ("s", pa.string()),
        ("b", pa.bool_()),
    ]
)


def _apply(s, op):
    kind = op[0]
    if kind == "filter":
        return s.filter(op[1])
    if kind == "filter_not":
        return s.filter_not(op[1])
    if kind == "with_columns":
        return s.with_columns(**{op[1]: op[2]})
    if kind == "select":
        return s.select("i", "s", **{op[1]: op[2]})
    if kind == "key_by":
        return s.key_by(op[1])
    return s.map_values(op[1])


def _run(ops, records, execution, schema=None, fan_out=()):
    """``ops`` then a sink; with ``fan_out``, the stream after ``ops`` also feeds those steps
    (a second chain reading a columnar batch another chain made) and a second sink."""
    t = st.Topology("prop", execution=execution)
    try:  # (reading a field a select dropped does not build, in either mode)
        s = t.source("in", schema=schema)
        for op in ops:
            s = _apply(s, op)
        s.to("out", key=st.serde.JSON)
        if fan_out:
            s2 = s
            for op in fan_out:
                s2 = _apply(s2, op)
            s2.to("out2", key=st.serde.JSON)
    except st.TopologyError as e:
        return ("unknown field", str(e))
    d = TopologyTestDriver(t)
    try:
        d.pipe_many("in", [(None, v, n) for n, v in enumerate(records)])
    except st.StreamsError as e:
        return ("error", type(e).__name__)
    topics = ("out", "out2") if fan_out else ("out",)
    raw = [m for topic in topics for m in d.broker.fetch_raw(st.TopicPartition(topic, 0), 0)]
    return [(m[0], m[1], m[2]) for m in raw]


@settings(max_examples=300, deadline=None)
@given(hs.lists(step, min_size=1, max_size=4), hs.lists(values, max_size=15))
def test_columnar_chain_equals_row_chain(ops, records):
    t = st.Topology("x", execution="columnar")
    s = t.source("in")
    try:
        for op in ops:
            s = _apply(s, op)
    except st.TopologyError:
        assert _run(ops, records, "columnar")[0] == "unknown field"
        return
    assert "[columnar]" in t.describe()
    assert _run(ops, records, "columnar") == _run(ops, records, "row")


@settings(max_examples=150, deadline=None)
@given(
    hs.lists(step, min_size=1, max_size=3),
    hs.lists(step, min_size=1, max_size=2),
    hs.lists(values, min_size=1, max_size=15),
)
def test_fan_out_columnar_equals_row(ops, fan_out, records):
    want = _run(ops, records, "row", fan_out=fan_out)
    assert _run(ops, records, "columnar", fan_out=fan_out) == want


@settings(max_examples=150, deadline=None)
@given(hs.lists(step, min_size=1, max_size=3), hs.lists(values, min_size=1, max_size=15))
def test_schema_source_columnar_equals_row(ops, records):
    records = [
        {k: x for k, x in v.items() if k != "j" or x is None or abs(x) < 2**63} for v in records
    ]
    assert _run(ops, records, "columnar", SCHEMA) == _run(ops, records, "row", SCHEMA)


def test_columnar_runs_on_arrow_and_falls_back_row_wise():
    from operators import columnar

    calls = {"arrow": 0, "rows": 0}
    real = columnar.ColumnarChainProcessor.process_columnar

    def spy(self, batch):
        calls["arrow"] += 1
        return real(self, batch)

    columnar.ColumnarChainProcessor.process_columnar = spy
    try:
        recs = [{"i": 1}, {"i": 2**63 - 1}]
        out = _run([("with_columns", "x", st.col("i") + 1)], recs, "columnar")
    finally:
        columnar.ColumnarChainProcessor.process_columnar = real
    assert calls["arrow"] == 1
    assert [m[1] for m in out] == [
        b'{"i":1,"x":2}',
        b'{"i":9223372036854775807,"x":9223372036854775808}',
    ]


def test_schema_mismatch_is_a_clear_error():
    t = st.Topology("m")
    t.source("in", schema="infer").filter(st.col("a") > 0).to("out")
    d = TopologyTestDriver(t)
    d.pipe("in", {"a": 1})
    try:
        d.pipe("in", {"a": "one"})
    except st.SerializationError as e:
        assert "inferred from the first batch" in str(e) and "a: int64" in str(e)
    else:
        raise AssertionError("no error")


def _run_branch(ops, preds, tails, records, execution):
    t = st.Topology("br", execution=execution)
    try:  # (reading a field a select dropped does not build, in either mode)
        s = t.source("in")
        for op in ops:
            s = _apply(s, op)
        for i, (out, tail) in enumerate(zip(s.branch(*preds), tails, strict=True)):
            if tail is not None:
                out = _apply(out, tail)
            out.to(f"out{i}", key=st.serde.JSON)
    except st.TopologyError as e:
        return ("unknown field", str(e))
    d = TopologyTestDriver(t)
    try:
        d.pipe_many("in", [(None, v, n) for n, v in enumerate(records)])
    except st.StreamsError as e:
        return ("error", type(e).__name__)
    got = [
        [(m[0], m[1], m[2]) for m in d.broker.fetch_raw(st.TopicPartition(f"out{i}", 0), 0)]
        for i in range(len(preds))
    ]
    return got


@settings(max_examples=200, deadline=None)
@given(
    hs.lists(step, max_size=2),
    hs.lists(boolean, min_size=1, max_size=3),
    hs.lists(hs.one_of(hs.none(), step), min_size=3, max_size=3),
    hs.lists(values, max_size=15),
)
def test_branch_columnar_equals_row(ops, preds, tails, records):
    tails = tails[: len(preds)]
    assert _run_branch(ops, preds, tails, records, "columnar") == _run_branch(
        ops, preds, tails, records, "row"
    )


def test_a_branch_of_expressions_is_columnar():
    t = st.Topology("br", execution="columnar")
    big, rest = t.source("in").branch(st.col("n") > 5, st.lit(True))
    big.to("big")
    rest.to("rest")
    assert "chain [columnar] branch-1 (branch" in t.describe()
    d = TopologyTestDriver(t)
    d.pipe_many("in", [(None, {"n": n}, n) for n in (1, 9, None, 6)])
    assert [r.value["n"] for r in d.read("big")] == [9, 6]
    assert [r.value["n"] for r in d.read("rest")] == [1, None]
