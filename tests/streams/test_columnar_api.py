"""The execution option, source schemas, and what describe() says about each chain."""

import pyarrow as pa
import pytest

import streams as st

SCHEMA = pa.schema([("a", pa.int64()), ("s", pa.string())])


def _chains(execution, schema=None):
    t = st.Topology("modes", execution=execution)
    s = t.source("in", schema=schema).filter(st.col("a") > 1).with_columns(b=st.col("a") * 2)
    s.to("exprs")
    s.map_values(lambda v: v, name="python").to("python")
    return [line.strip().split(" ")[1] for line in t.describe().splitlines() if "chain" in line]


def test_describe_shows_each_chains_mode():
    assert _chains("row", SCHEMA) == ["[row]", "[row]"]
    assert _chains("auto") == ["[row]", "[row]"]  # rows in: nothing to gain
    assert _chains("auto", SCHEMA) == ["[columnar]", "[row]"]  # Arrow in
    assert _chains("columnar") == ["[columnar]", "[row]"]  # a Python callable stays row-wise


def _aggregations(execution):
    from streams import agg, windows

    t = st.Topology("aggs", execution=execution)
    by_user = t.source("in").key_by("user")
    w = by_user.window("hop", windows.hopping(ms=10_000, advance=2_000))
    w.aggregate(n=agg.count(), top=agg.max("a")).to("counts")
    w2 = by_user.window("upd", windows.tumbling(ms=1_000), emit="update")
    w2.aggregate(n=agg.count()).to("updates")
    by_user.window("tops", windows.tumbling(ms=1_000)).aggregate(t=agg.argmax("a", keep=("a",))).to(
        "tops"
    )
    by_user.window("sess", windows.session(ms=1_000)).count().to("sessions")
    by_user.aggregate("total", agg.sum("a")).to("totals")
    by_user.aggregate("last", agg.last("a")).to("lasts")
    return t.describe().splitlines()


def test_describe_shows_how_each_aggregation_runs():
    def modes(execution):
        lines = _aggregations(execution)
        out = {}
        for line in (x.strip() for x in lines):
            if line.startswith(("window_aggregate", "aggregate")):
                _, rest = line.split(" [", 1)
                mode, rest = rest.split("] ", 1)
                out[rest.split(" ", 1)[0]] = mode
        return out

    assert modes("columnar") == {
        "hop": "columnar + windows on Arrow",  # final count/max: open windows as a table
        "upd": "columnar",  # (updates are emitted per batch: the objects)
        "tops": "columnar",  # argmax keeps records: the objects
        "sess": "columnar",  # a batch's own sessions on Arrow, then merged record-like
        "total": "columnar",
        "last": "row",  # (not an Arrow aggregation)
    }
    assert set(modes("row").values()) == {"row"}


def test_execution_can_change_after_building():
    t = st.Topology("x")
    t.source("in").filter(st.col("a") > 1).to("out")
    assert "[row]" in t.describe()
    t.execution = "columnar"
    assert "[columnar]" in t.describe()


def test_bad_options_are_topology_errors():
    with pytest.raises(st.TopologyError, match="execution must be"):
        st.Topology("x", execution="fast")  # type: ignore[arg-type]
    with pytest.raises(st.TopologyError, match="pyarrow.Schema or 'infer'"):
        st.Topology("x").source("in", schema={"a": "int"})
    with pytest.raises(st.TopologyError, match="needs JSON or Avro values"):
        st.Topology("x").source("in", schema=SCHEMA, value=st.serde.STR)


def test_schema_source_gives_every_field_in_both_modes():
    outs = []
    for execution in ("row", "columnar"):
        t = st.Topology("s", execution=execution)
        t.source("in", schema=SCHEMA).filter(st.col("a") >= 0).to("out")
        d = st.TopologyTestDriver(t)
        d.pipe_many("in", [{"a": 1, "zzz": 1}, {"a": 2, "s": "x"}])
        outs.append(d.read_values("out"))
    assert outs[0] == outs[1] == [{"a": 1, "s": None}, {"a": 2, "s": "x"}]


WIDE = pa.schema([("a", pa.int64()), ("s", pa.string()), ("t", pa.int64()), ("u", pa.string())])


def _decoded(build):
    t = st.Topology("prune", execution="columnar")
    build(t.source("in", schema=WIDE, timestamp="t"))
    return t.compile().subtopologies[0].inputs["in"].schema.names


def test_a_source_decodes_only_the_fields_a_projecting_chain_reads():
    assert _decoded(lambda s: s.filter(st.col("a") > 0).select("s").to("o")) == ["a", "s", "t"]
    assert _decoded(lambda s: s.map_values(st.col("u")).to("o")) == ["t", "u"]
    # whole values go on: every field
    assert _decoded(lambda s: s.filter(st.col("a") > 0).to("o")) == WIDE.names
    # a Python step after the select runs in a chain of its own: it sees the selected values
    assert _decoded(lambda s: s.select("s").map_values(lambda v: v).to("o")) == ["s", "t"]
    assert _decoded(lambda s: s.map_values(lambda v: v["a"]).to("o")) == WIDE.names

    def two(s):  # one child that passes whole values is enough to keep them all
        s.select("a").to("o")
        s.filter(st.col("a") > 0).to("p")

    assert _decoded(two) == WIDE.names


def test_a_field_that_is_not_decoded_is_not_checked_and_results_match_row_mode():
    outs = []
    for execution in ("row", "columnar"):
        t = st.Topology("p", execution=execution)
        s = t.source("in", schema=WIDE if execution == "columnar" else None, timestamp="t")
        s.filter(st.col("a") > 0).select("s", b=st.col("a") * 2).to("out")
        d = st.TopologyTestDriver(t)
        d.pipe_many("in", [{"a": 1, "s": "x", "t": 5, "u": 7}, {"a": 0, "t": 6, "u": [1]}])
        outs.append(d.read_values("out"))
    assert outs[0] == outs[1] == [{"s": "x", "b": 2}]  # (u is no string: never decoded)


def _after_window(execution, emit="final"):
    from streams import agg, windows

    t = st.Topology("after", execution=execution)
    s = t.source("in", schema=SCHEMA, timestamp="a").key_by("s")
    w = s.window("w", windows.hopping(ms=100, advance=50), emit=emit).aggregate(n=agg.count())
    w.with_columns(k=st.key(), m=st.col("n") * 10, name="shape").key_by(
        st.col("window_start"), name="by-start"
    ).to("out", key=st.serde.JSON)
    return t


def test_a_chain_after_windows_closed_on_arrow_runs_on_arrow_with_row_results():
    def chain_mode(t):
        (line,) = [x for x in t.describe().splitlines() if "chain" in x and "shape" in x]
        return line.strip().split(" ")[1]

    assert chain_mode(_after_window("auto")) == "[columnar]"
    assert chain_mode(_after_window("auto", emit="update")) == "[row]"  # (updates: rows)
    assert chain_mode(_after_window("row")) == "[row]"
    events = [{"a": i // 10, "s": f"u{i % 700}"} for i in range(3_000)]
    outs = []
    for execution in ("row", "auto"):
        d = st.TopologyTestDriver(_after_window(execution))
        d.pipe_many("in", events)  # (one batch: 700+ windows close at once, on Arrow)
        d.end_of_input()
        outs.append(sorted(d.read_key_values("out"), key=lambda kv: (kv[0], kv[1]["k"])))
    assert len(outs[0]) > 1_000
    assert outs[0] == outs[1]


def test_fields_only_a_repartitioned_aggregation_reads_are_decoded():
    from streams import agg, windows

    def win(s):
        return s.window("w", windows.tumbling(ms=10))

    # through the repartition topic into aggregations of a few fields: only those
    assert _decoded(lambda s: win(s.key_by("u")).count().to("o")) == ["t", "u"]
    assert _decoded(lambda s: win(s.key_by("u")).aggregate(m=agg.max("a")).to("o")) == [
        "a",
        "t",
        "u",
    ]
    assert _decoded(
        lambda s: win(s.with_columns(b=st.col("a") + 1).key_by("b")).count().to("o")
    ) == ["a", "t"]  # (b is computed: not read from the input)
    # an aggregation of a callable, a Python step after the repartition: every field
    assert _decoded(lambda s: s.key_by("u").aggregate("r", agg.reduce(lambda a, b: a)).to("o")) == (
        WIDE.names
    )
    assert _decoded(lambda s: s.key_by("u").map_values(lambda v: v).to("o")) == WIDE.names


def test_a_repartitioned_count_of_pruned_fields_matches_row_mode():
    from streams import agg, windows

    outs = []
    for execution in ("row", "auto"):
        t = st.Topology("p", execution=execution)
        schema = WIDE if execution == "auto" else None
        s = t.source("in", schema=schema, timestamp="t").filter(st.col("a") > 0).key_by("s")
        w = s.window("w", windows.tumbling(ms=10)).aggregate(n=agg.count(), top=agg.max("a"))
        w.to("out", key=st.serde.JSON)
        d = st.TopologyTestDriver(t)
        d.pipe_many("in", [{"a": i % 5, "s": f"k{i % 3}", "t": i, "u": [i]} for i in range(40)])
        d.end_of_input()
        outs.append(sorted(d.read_key_values("out"), key=repr))
    assert len(outs[0]) == 12
    assert outs[0] == outs[1]  # (u is no string: never decoded under auto)
