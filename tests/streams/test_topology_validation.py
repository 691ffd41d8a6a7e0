"""Bad topologies are rejected at build time with a message naming the step."""

import pytest

import streams as st
from streams import TopologyError


@pytest.fixture
def topo():
    return st.Topology("app")


def test_bad_app_id():
    with pytest.raises(TopologyError, match="application id"):
        st.Topology("has space")


def test_duplicate_step_id(topo):
    s = topo.source("in")
    s.filter(st.col("a") > 1, name="big")
    with pytest.raises(TopologyError, match="duplicate step id 'big'"):
        s.map_values(lambda v: v, name="big")


def test_invalid_step_id(topo):
    with pytest.raises(TopologyError, match="step id 'Big Step' is not valid"):
        topo.source("in").filter(st.col("a") > 1, name="Big Step")


def test_non_callable_function_names_step(topo):
    with pytest.raises(TopologyError, match="step 'm': function must be callable.*got int"):
        topo.source("in").map_values(42, name="m")


def test_wrong_arity_names_step_and_function(topo):
    def one_arg(v):
        return v

    with pytest.raises(TopologyError, match="step 'm': function .*one_arg must accept 2"):
        topo.source("in").map(one_arg, name="m")


def test_map_rejects_expressions(topo):
    with pytest.raises(TopologyError, match="step 'm': function must be a callable"):
        topo.source("in").map(st.col("a"), name="m")


def test_same_topic_sourced_twice(topo):
    topo.source("in")
    with pytest.raises(TopologyError, match="already read by step 'source-in'"):
        topo.source("in", name="again")


def test_invalid_topic_name(topo):
    with pytest.raises(TopologyError, match="not a valid Kafka topic"):
        topo.source("bad topic!")


def test_unknown_step(topo):
    with pytest.raises(TopologyError, match="unknown step 'nope'"):
        topo.stream("nope")


def test_no_source():
    with pytest.raises(TopologyError, match="has no source"):
        st.Topology("empty").compile()


def test_sink_loop_rejected(topo):
    s = topo.source("in").filter(st.col("a") > 1)
    with pytest.raises(TopologyError, match="step 'loop': writing to 'in'.*loop forever"):
        s.to("in", name="loop")


def test_merge_across_topologies(topo):
    other = st.Topology("other").source("x")
    with pytest.raises(TopologyError, match="cannot merge step 'source-x' of topology 'other'"):
        topo.source("in").merge(other, name="m")


def test_merge_needs_streams(topo):
    s = topo.source("in")
    with pytest.raises(TopologyError, match="step 'm': merge\\(\\) needs at least one"):
        s.merge(name="m")
    with pytest.raises(TopologyError, match="same stream twice"):
        s.merge(s, name="m2")


def test_repartition_needs_valid_name(topo):
    s = topo.source("in")
    with pytest.raises(TopologyError, match="not valid"):
        s.repartition("Bad")
    with pytest.raises(TopologyError, match="partitions must be a positive int"):
        s.repartition("ok", partitions=0)


def test_branch_outputs_must_be_used_via_returned_streams(topo):
    s = topo.source("in")
    s.branch(st.col("a") > 1, name="br")
    with pytest.raises(TopologyError, match="use the streams returned by branch 'br'"):
        topo.stream("br").filter(st.col("a") > 1)


def test_empty_select_and_with_columns(topo):
    s = topo.source("in")
    with pytest.raises(TopologyError, match="select\\(\\) needs"):
        s.select(name="sel")
    with pytest.raises(TopologyError, match="with_columns\\(\\) needs"):
        s.with_columns(name="wc")


def test_sink_serde_conflict(topo):
    s = topo.source("in")
    s.to("out", value=st.serde.JSON)
    s.to("out", value=st.serde.STR, name="again")
    with pytest.raises(
        TopologyError, match="step 'again': topic 'out' is written with other serdes"
    ):
        topo.compile()


def test_cannot_chain_after_sink(topo):
    topo.source("in").to("out", name="snk")
    with pytest.raises(TopologyError, match="'snk' is a sink"):
        topo.stream("snk").filter(st.col("a") > 1)
