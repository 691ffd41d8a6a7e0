"""agg.collect keeps values in arrival order and skips nulls, as every aggregation does."""

import pytest

import streams as st
from streams import agg, windows
from streams.testing import TopologyTestDriver

EVENTS = [{"v": 1}, {"v": None}, {"w": 5}, {"v": 3}]


@pytest.mark.parametrize("execution", ["row", "columnar"])
def test_collect_skips_nulls_in_an_aggregate(execution):
    t = st.Topology("col", execution=execution)
    t.source("ev").aggregate("all", vals=agg.collect("v")).to("out")
    d = TopologyTestDriver(t)
    d.pipe_many("ev", [("k", e) for e in EVENTS])
    assert d.read_values("out")[-1] == {"vals": [1, 3]}


@pytest.mark.parametrize("execution", ["row", "columnar"])
def test_collect_skips_nulls_in_a_window(execution):
    t = st.Topology("colw", execution=execution)
    (
        t.source("ev", timestamp="ts")
        .window("w", windows.tumbling(seconds=10))
        .aggregate(vals=agg.collect("v"))
        .to("out")
    )
    d = TopologyTestDriver(t)
    d.pipe_many("ev", [("k", {**e, "ts": 1_000 + i}) for i, e in enumerate(EVENTS)])
    d.pipe("ev", {"ts": 60_000, "v": 9}, key="k")  # closes the first window
    assert d.read_values("out")[0]["vals"] == [1, 3]


def test_collect_of_whole_values_skips_tombstones():
    t = st.Topology("colv")
    t.source("ev").aggregate("all", vals=agg.collect()).to("out")
    d = TopologyTestDriver(t)
    d.pipe("ev", 1, key="k")
    d.pipe("ev", None, key="k")
    d.pipe("ev", 2, key="k")
    assert d.read_values("out")[-1] == {"vals": [1, 2]}
