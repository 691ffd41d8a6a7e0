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
    with pytest.raises(st.TopologyError, match="needs JSON values"):
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
