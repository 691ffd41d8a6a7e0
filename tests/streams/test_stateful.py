"""Stateful steps through the driver: aggregations, the Processor API, stores, changelogs."""

import pytest

import streams as st
from streams import agg
from streams.core.serde import JSON
from streams.runtime.broker import TopicPartition
from streams.testing import TopologyTestDriver


def counts_topology():
    t = st.Topology("cnt")
    t.source("clicks").key_by("user").count("clicks-per-user").to("counts", value=st.serde.INT)
    return t


def test_count_after_key_by_goes_through_a_repartition_topic():
    t = counts_topology()
    plan = t.compile()
    assert [s.inputs.keys() for s in plan.subtopologies][1] == {"cnt-clicks-per-user-repartition"}
    assert {it.name for it in plan.internal_topics} == {
        "cnt-clicks-per-user-repartition",
        "cnt-clicks-per-user-changelog",
    }
    d = TopologyTestDriver(t, partitions=3)
    for u in ["a", "b", "a", "c", "a"]:
        d.pipe("clicks", {"user": u})
    out = d.read("counts")
    assert sorted((r.key, r.value) for r in out) == [
        ("a", 1),
        ("a", 2),
        ("a", 3),
        ("b", 1),
        ("c", 1),
    ]
    assert [r.value for r in out if r.key == "a"] == [1, 2, 3]  # per key, in order
    store = d.store("clicks-per-user")
    assert (store.get("a"), store.get("b"), store.get("c"), store.get("zzz")) == (3, 1, 1, None)


def test_counts_per_update_in_order_on_one_partition():
    d = TopologyTestDriver(counts_topology())
    for u in ["a", "b", "a"]:
        d.pipe("clicks", {"user": u})
    assert d.read_key_values("counts") == [("a", 1), ("b", 1), ("a", 2)]


def test_named_aggregations_give_dicts_and_skip_nulls():
    t = st.Topology("agg")
    (
        t.source("tx")
        .group_by("card")
        .aggregate(
            "stats",
            n=agg.count(),
            total=agg.sum("eur"),
            avg=agg.mean("eur"),
            lo=agg.min("eur"),
            hi=agg.max("eur"),
            first=agg.first("eur"),
            last=agg.last("eur"),
            all=agg.collect("eur"),
        )
        .to("out")
    )
    d = TopologyTestDriver(t)
    for eur in (10, None, 30):
        d.pipe("tx", {"card": "c1", "eur": eur})
    *_, final = d.read_values("out")
    assert final == {
        "n": 3,
        "total": 40,
        "avg": 20.0,
        "lo": 10,
        "hi": 30,
        "first": 10,
        "last": 30,
        "all": [10, 30],  # collect skips nulls too
    }
    assert d.store("stats").get("c1") == final


def test_one_update_per_key_per_batch():
    d = TopologyTestDriver(counts_topology())
    d.pipe_many("clicks", [{"user": u} for u in "abababa"])
    assert sorted(d.read_key_values("counts")) == [("a", 4), ("b", 3)]


def test_reduce_and_custom():
    t = st.Topology("red")
    s = t.source("in", key=st.serde.STR)
    s.reduce("longest", lambda a, b: a if len(a["w"]) >= len(b["w"]) else b).to("out1")
    s.aggregate("chars", agg.custom(init=lambda: 0, add=lambda acc, v: acc + len(v["w"]))).to(
        "out2", value=st.serde.INT
    )
    d = TopologyTestDriver(t)
    for w in ("ab", "abcd", "x"):
        d.pipe("in", {"w": w}, key="k")
    assert d.read_values("out1")[-1] == {"w": "abcd"}
    assert d.read_values("out2") == [2, 6, 7]


def test_null_keys_are_skipped_not_crashing():
    t = st.Topology("nk")
    t.source("in").count("n").to("out", value=st.serde.INT)
    d = TopologyTestDriver(t)
    d.pipe("in", {"a": 1}, key=None)
    d.pipe("in", {"a": 1}, key="k")
    assert d.read_key_values("out") == [("k", 1)]


def test_aggregator_error_names_step():
    t = st.Topology("boom")
    t.source("in").aggregate("s", agg.sum(lambda v: 1 / v["x"])).to("out")
    d = TopologyTestDriver(t)
    with pytest.raises(st.ProcessingError, match="step 's'.*ZeroDivisionError"):
        d.pipe("in", {"x": 0}, key="k")


def test_process_api_dedupe_with_store_and_forward():
    def dedupe(ctx):
        seen = ctx.store("seen")
        if ctx.value["id"] not in seen:
            seen.put(ctx.value["id"], ctx.timestamp)
            ctx.forward(ctx.key, {**ctx.value, "first_seen": ctx.timestamp})

    t = st.Topology("dd")
    t.source("events").process("dedupe", dedupe, stores=["seen"]).to("unique")
    d = TopologyTestDriver(t)
    for i, ev in enumerate([1, 2, 1, 3, 2]):
        d.pipe("events", {"id": ev}, key="k", timestamp=100 + i)
    assert [v["id"] for v in d.read_values("unique")] == [1, 2, 3]
    assert d.store("seen").get(1) == 100


def test_a_stateful_step_after_process_sees_the_keys_process_forwards():
    """``ctx.forward`` may emit any key, so an aggregation downstream reads through a
    repartition topic (it used to count a key separately in every task that forwarded it)."""
    t = st.Topology("pk")
    t.source("in").process("regroup", lambda ctx: ctx.forward(ctx.value["g"], ctx.value)).count(
        "per-group"
    ).to("out", key=JSON)
    d = TopologyTestDriver(t, partitions=3)
    for i in range(30):
        d.pipe("in", {"g": "A" if i % 3 else "B"}, key=f"k{i}")
    final = dict(d.read_key_values("out"))
    assert final == {"A": 20, "B": 10}


def test_process_undeclared_store_is_an_error():
    t = st.Topology("pu")
    t.source("in").process("p", lambda ctx: ctx.store("nope"), stores=["mine"]).to("out")
    d = TopologyTestDriver(t)
    with pytest.raises(st.StreamsError, match="store 'nope' is not declared.*mine"):
        d.pipe("in", {}, key="k")


def test_bad_stateful_declarations():
    t = st.Topology("bad")
    s = t.source("in")
    with pytest.raises(st.TopologyError, match="one aggregation or named ones"):
        s.aggregate("x")
    with pytest.raises(st.TopologyError, match="must be an agg"):
        s.aggregate("x", n=42)
    with pytest.raises(st.TopologyError, match="not valid"):
        s.count("Bad Id")
    s.count("dup")
    with pytest.raises(st.TopologyError, match="duplicate step id 'dup'"):
        s.count("dup")
    s.process("p1", lambda ctx: None, stores=["shared"])
    with pytest.raises(st.TopologyError, match="store 'shared' already belongs to step 'p1'"):
        s.process("p2", lambda ctx: None, stores=["shared"])


def test_changelog_gets_one_record_per_dirty_key_per_commit_and_is_compacted():
    t = counts_topology()
    d = TopologyTestDriver(t)
    d.pipe_many("clicks", [{"user": f"u{i % 10}"} for i in range(1000)])
    tp = TopicPartition("cnt-clicks-per-user-changelog", 0)
    assert d.broker.end_offset(tp) == 10
    assert d.broker.topics[tp.topic].config == {"cleanup.policy": "compact"}
    d.pipe("clicks", {"user": "u1"})
    assert d.broker.end_offset(tp) == 11


def test_store_missing_name():
    d = TopologyTestDriver(counts_topology())
    with pytest.raises(st.TopologyError, match="no store 'nope'"):
        d.store("nope")
