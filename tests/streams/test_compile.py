import streams as st
from streams.plan import nodes as plan


def test_stateless_run_fuses_into_one_chain():
    t = st.Topology("app")
    (
        t.source("in")
        .filter(st.col("a") > 1)
        .map_values(lambda v: v)
        .key_by("k")
        .with_columns(b=st.col("a") * 2)
        .to("out")
    )
    p = t.compile()
    (sub,) = p.subtopologies
    chains = [s for s in sub.segments.values() if s.kind == "chain"]
    assert [c.steps for c in chains] == [("filter-1", "map-values-2", "key-by-3", "with-columns-4")]


def test_fan_out_ends_chain():
    t = st.Topology("app")
    s = t.source("in").filter(st.col("a") > 1, name="f")
    s.map_values(st.col("a"), name="x").to("o1")
    s.map_values(st.col("a"), name="y").to("o2")
    segs = t.compile().subtopologies[0].segments
    assert segs["f"].steps == ("f",)
    assert set(segs["f"].exits[0]) == {"x", "y"}


def test_no_fuse_gives_one_processor_per_step():
    t = st.Topology("app")
    t.source("in").filter(st.col("a") > 1).map_values(st.col("a")).to("out")
    segs = t.compile(fuse=False).subtopologies[0].segments
    assert [s.steps for s in segs.values()] == [("filter-1",), ("map-values-2",), ("sink-3",)]


def test_repartition_splits_subtopologies_and_names_topic():
    t = st.Topology("app")
    t.source("in").key_by("user").repartition("by-user", partitions=3).filter(st.col("a") > 0).to(
        "out"
    )
    p = t.compile()
    assert len(p.subtopologies) == 2
    assert list(p.subtopologies[0].inputs) == ["in"]
    assert list(p.subtopologies[1].inputs) == ["app-by-user-repartition"]
    (it,) = p.internal_topics
    assert (it.name, it.kind, it.partitions) == ("app-by-user-repartition", "repartition", 3)
    assert p.subtopologies[0].outputs == ("app-by-user-repartition",)


def test_merge_of_two_sources_is_one_subtopology():
    t = st.Topology("app")
    a, b = t.source("a"), t.source("b")
    a.merge(b).to("out")
    p = t.compile()
    assert len(p.subtopologies) == 1
    assert set(p.subtopologies[0].inputs) == {"a", "b"}


def test_key_changed_tracking():
    t = st.Topology("app")
    s = t.source("in")
    assert not t.key_changed(s.step)
    k = s.key_by("x")
    assert t.key_changed(k.step)
    assert t.key_changed(k.filter(st.col("a") > 1).step)
    assert not t.key_changed(k.repartition("r").step)
    assert t.key_changed(s.merge(k).step)


def test_describe_text_and_mermaid():
    t = st.Topology("app")
    hi, lo = t.source("in").branch(st.col("a") > 10, st.col("a") <= 10, name="split")
    hi.to("hi")
    lo.key_by("user").repartition("by-user").to("lo")
    text = t.describe()
    assert "Sub-topology 0  (source topics: in)" in text
    assert "[branch 0]" in text and "[branch 1]" in text
    assert "app-by-user-repartition  repartition  partitions=as inputs (in)" in text
    mer = t.describe("mermaid")
    assert mer.startswith("flowchart LR")
    assert 'n_t_in(["in"])' in mer and "-->|1|" in mer


def test_plan_nodes_are_frozen():
    t = st.Topology("app")
    t.source("in")
    node = t.nodes[0]
    assert isinstance(node, plan.Source)
    try:
        node.topic = "x"  # type: ignore[misc]
    except AttributeError:
        pass
    else:  # pragma: no cover
        raise AssertionError("plan nodes must be immutable")
