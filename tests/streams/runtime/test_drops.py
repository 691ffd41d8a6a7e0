"""Records dropped on purpose are counted by step and reason: in the task's Drops, in
``driver.dropped``, in ``streams_records_dropped_total`` and on the status line."""

import asyncio
import logging

import pytest

import streams as st
from streams import windows
from streams.runtime.status import Snapshot, format_status
from streams.testing import TopologyTestDriver


@pytest.mark.parametrize("execution", ["row", "columnar"])
def test_an_aggregation_counts_records_without_a_key(execution):
    t = st.Topology("agg", execution=execution)
    t.source("in").aggregate("total", n=st.agg.count(), s=st.agg.sum("x")).to("out")
    d = TopologyTestDriver(t)
    d.pipe_many("in", [("a", {"x": 1}), (None, {"x": 2}), (None, {"x": 3}), ("a", {"x": 4})])
    assert d.read_values("out") == [{"n": 2, "s": 5}]
    assert d.dropped == {("total", "null_key"): 2}


def test_the_first_null_key_drop_of_a_step_is_a_warning_and_later_ones_are_counted(caplog):
    t = st.Topology("warn")
    t.source("in").count("n").to("out", value=st.serde.INT)
    d = TopologyTestDriver(t)
    with caplog.at_level(logging.DEBUG, logger="streams"):
        d.pipe("in", {}, key=None)
        d.pipe("in", {}, key=None)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "step 'n' dropped 1" in warnings[0].getMessage()
    assert not [r for r in caplog.records if r.levelno < logging.WARNING and "null" in r.msg]
    assert d.dropped == {("n", "null_key"): 2}


def test_counts_survive_a_crash_of_the_driver():
    t = st.Topology("crash", on_error="skip")
    t.source("in").map_values(lambda v: 1 // v["n"], name="inv").to("out")
    d = TopologyTestDriver(t)
    d.pipe("in", {"n": 0}, key="k")
    d.crash()
    d.restart()
    assert d.dropped == {("inv", "error_skipped"): 1}


@pytest.mark.parametrize("how", ["inner", "left"])
def test_a_stream_table_join_drops_null_keys_only_when_inner(how):
    t = st.Topology("stj")
    cards = t.table("cards")
    t.source("tx").join(cards, lambda v, c: {**v, "c": c}, how=how, name="j").to("out")
    d = TopologyTestDriver(t)
    d.pipe("cards", {"limit": 1}, key="k")
    d.pipe("tx", {"n": 1}, key=None)
    d.pipe("tx", {"n": 2}, key="k")
    out = d.read_values("out")
    if how == "inner":
        assert out == [{"n": 2, "c": {"limit": 1}}]
        assert d.dropped == {("j", "null_key"): 1}
    else:  # a left join keeps it, unmatched (as Kafka Streams since KIP-962)
        assert out == [{"n": 1, "c": None}, {"n": 2, "c": {"limit": 1}}]
        assert d.dropped == {}


def test_a_table_and_a_stream_stream_join_count_null_keys():
    t = st.Topology("ssj")
    left = t.source("left", timestamp="ts")
    right = t.source("right", timestamp="ts")
    left.join(right, lambda a, b: (a, b), window=windows.join_window(10, 10), name="j").to("out")
    t.source("tab").to_table("tab-t").changes().to("tab-out")
    d = TopologyTestDriver(t)
    d.pipe("left", {"ts": 1}, key=None, timestamp=1)
    d.pipe("right", {"ts": 1}, key=None, timestamp=1)
    d.pipe("tab", {"v": 1}, key=None)
    assert d.dropped == {("j", "null_key"): 2, ("tab-t", "null_key"): 1}


def test_the_worker_exports_drops_and_the_status_line_shows_them():
    t = st.Topology("metered", on_error="skip")
    s = t.source("in")
    s.count("per-key").to("counts", value=st.serde.INT)
    s.map_values(lambda v: 1 // v["n"], name="inv").to("out")
    broker = st.EmbeddedBroker()
    for topic in ("in", "counts", "out"):
        broker.create_topic(topic, 1)
    broker.append("in", 0, None, b'{"n": 1}', 0)
    broker.append("in", 0, None, b'{"n": 0}', 1)
    broker.append("in", 0, b"k", b'{"n": 0}', 2)
    worker = st.Worker(t, broker, st.Config(state_backend="memory"))
    asyncio.run(worker.run(until_idle=True))
    m = worker.metrics
    dropped = "streams_records_dropped_total"
    assert m.sample(dropped, {"step": "per-key", "reason": "null_key"}) == 2
    assert m.sample(dropped, {"step": "inv", "reason": "error_skipped"}) == 2
    text = m.render().decode()
    assert 'streams_records_dropped_total{reason="null_key",step="per-key"} 2.0' in text
    assert m.dropped_total() == 4
    line = format_status(Snapshot(processed=3, lag=0, dropped=m.dropped_total()), Snapshot(), 1.0)
    assert line.endswith("| dropped 4")
    assert "dropped" not in format_status(Snapshot(processed=3, lag=0), Snapshot(), 1.0)


def test_a_source_skipping_undecodable_records_counts_them():
    t = st.Topology("src")
    t.source("in", on_error="skip").to("out")
    d = TopologyTestDriver(t)
    d.pipe_raw("in", b"k", b"{nope")
    assert d.dropped == {("source-in", "error_skipped"): 1}
