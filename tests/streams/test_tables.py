"""Tables, stream-table joins and global tables through the driver and the worker."""

import asyncio

import pytest

import streams as st
from streams.runtime.broker import TopicPartition
from streams.runtime.embedded import EmbeddedBroker
from streams.testing import TopologyTestDriver


def enrich(how="inner"):
    t = st.Topology("tt")
    cards = t.table("cards")
    tx = t.source("tx")
    tx.join(cards, lambda v, c: {**v, "limit": None if c is None else c["limit"]}, how=how).to(
        "out"
    )
    return t


@pytest.mark.parametrize("how", ["inner", "left"])
def test_stream_table_join_sees_the_table_as_of_processing(how):
    d = TopologyTestDriver(enrich(how), partitions=2)
    d.pipe("tx", {"eur": 1}, key="c1")  # no card yet
    d.pipe("cards", {"limit": 100}, key="c1")
    d.pipe("tx", {"eur": 2}, key="c1")
    d.pipe("cards", {"limit": 200}, key="c1")  # update
    d.pipe("tx", {"eur": 3}, key="c1")
    d.pipe("cards", None, key="c1")  # tombstone: deleted
    d.pipe("tx", {"eur": 4}, key="c1")
    got = [(v["eur"], v["limit"]) for v in d.read_values("out")]
    if how == "inner":
        assert got == [(2, 100), (3, 200)]
    else:
        assert got == [(1, None), (2, 100), (3, 200), (4, None)]


def test_table_uses_its_topic_as_changelog_and_restores_from_it(tmp_path):
    t = enrich()
    assert not [it for it in t.compile().internal_topics if it.kind == "changelog"]
    d = TopologyTestDriver(t, state_backend="rocksdb", state_dir=str(tmp_path))
    for i in range(10):
        d.pipe("cards", {"limit": i}, key=f"c{i}")
    d.crash()
    d.restart()
    assert d.restored_records == 0  # the local copy is current: nothing to replay
    d.crash()
    import shutil

    shutil.rmtree(tmp_path)
    d.restart()
    assert d.restored_records == 10  # rebuilt from the source topic itself
    d.pipe("tx", {"eur": 5}, key="c7")
    assert d.read_values("out") == [{"eur": 5, "limit": 7}]
    d.close()


def test_derived_tables_filter_and_map_values_propagate_tombstones():
    t = st.Topology("dt")
    cards = t.table("cards")
    active = cards.filter(st.col("active")).map_values(lambda c: {"limit": c["limit"] * 2})
    active.changes().to("active-changes")
    t.source("tx").join(active, lambda v, c: {**v, **c}).to("out")
    d = TopologyTestDriver(t)
    d.pipe("cards", {"limit": 10, "active": True}, key="c1")
    d.pipe("tx", {"eur": 1}, key="c1")
    d.pipe("cards", {"limit": 10, "active": False}, key="c1")  # filtered out -> deletion
    d.pipe("tx", {"eur": 2}, key="c1")
    assert d.read_values("out") == [{"eur": 1, "limit": 20}]
    assert d.read_key_values("active-changes") == [("c1", {"limit": 20}), ("c1", None)]


def test_to_table_then_join():
    t = st.Topology("tot")
    profiles = t.source("profile-updates").to_table("profiles")
    t.source("clicks").join(profiles, lambda v, p: {**v, "tier": p["tier"]}).to("out")
    d = TopologyTestDriver(t)
    d.pipe("profile-updates", {"tier": "gold"}, key="u1")
    d.pipe("clicks", {"page": "/"}, key="u1")
    assert d.read_values("out") == [{"page": "/", "tier": "gold"}]
    assert "tot-profiles-changelog" in {it.name for it in t.compile().internal_topics}


def test_rekeyed_stream_join_needs_a_name_and_goes_through_a_repartition():
    t = st.Topology("rk")
    cards = t.table("cards")
    tx = t.source("tx").key_by("card")
    with pytest.raises(st.TopologyError, match="give the join a name="):
        tx.join(cards, lambda v, c: v)
    tx.join(cards, lambda v, c: {**v, **c}, name="enrich").to("out")
    assert "rk-enrich-repartition" in {it.name for it in t.compile().internal_topics}
    d = TopologyTestDriver(t, partitions=3)
    d.pipe("cards", {"limit": 1}, key="c9")
    d.pipe("tx", {"card": "c9", "eur": 4}, key="whatever")
    assert d.read_values("out") == [{"card": "c9", "eur": 4, "limit": 1}]


def test_join_arguments_are_checked():
    t = st.Topology("bad")
    cards = t.table("cards")
    g = t.global_table("merchants")
    s = t.source("tx")
    with pytest.raises(st.TopologyError, match="needs key="):
        s.join(g, lambda v, m: v)
    with pytest.raises(st.TopologyError, match="key= is for global tables"):
        s.join(cards, lambda v, c: v, key="x")
    with pytest.raises(st.TopologyError, match="how must be"):
        s.join(cards, lambda v, c: v, how="outer")
    with pytest.raises(st.TopologyError, match="must accept 2"):
        s.join(cards, lambda v: v)


def test_global_table_join_by_extracted_key_across_partitions():
    t = st.Topology("gt")
    merchants = t.global_table("merchants")
    (
        t.source("tx")
        .join(
            merchants,
            lambda v, m: {**v, "blocked": m is not None and m["blocked"]},
            key="merchant",
            how="left",
        )
        .to("out")
    )
    d = TopologyTestDriver(t, partitions=3)
    for i in range(6):
        d.pipe("merchants", {"blocked": i % 2 == 0}, key=f"m{i}")
    for i in range(8):
        d.pipe("tx", {"merchant": f"m{i}"}, key=f"card{i}")
    got = sorted((v["merchant"], v["blocked"]) for v in d.read_values("out"))
    assert got == [(f"m{i}", i < 6 and i % 2 == 0) for i in range(8)]


def test_global_table_on_the_worker(tmp_path):
    t = st.Topology("gw")
    merchants = t.global_table("merchants")
    t.source("tx").join(merchants, lambda v, m: {**v, **m}, key="merchant").to("out")
    b = EmbeddedBroker()
    for topic, n in (("merchants", 2), ("tx", 2), ("out", 2)):
        b.create_topic(topic, n)
    b.append("merchants", 0, b"m1", b'{"risk": 9}', 0)
    b.append("merchants", 1, b"m2", b'{"risk": 1}', 0)
    b.append("tx", 0, b"c1", b'{"merchant": "m2"}', 0)
    b.append("tx", 1, b"c2", b'{"merchant": "m1"}', 0)
    b.append("tx", 1, b"c3", b'{"merchant": "nope"}', 0)
    asyncio.run(st.Worker(t, b, st.Config(state_dir=str(tmp_path))).run(until_idle=True))
    out = sorted(m.value for p in range(2) for m in b.fetch(TopicPartition("out", p), 0))
    assert out == [b'{"merchant":"m1","risk":9}', b'{"merchant":"m2","risk":1}']


def test_join_of_topics_with_different_partition_counts_is_rejected():
    b = EmbeddedBroker()
    b.create_topic("cards", 2)
    b.create_topic("tx", 3)
    with pytest.raises(st.BrokerError, match="reads cards \\(2 partitions\\), tx \\(3"):
        asyncio.run(st.Worker(enrich(), b, st.Config(state_backend="memory")).run(until_idle=True))


def test_an_aggregation_is_a_table_joins_see_results():
    t = st.Topology("agt")
    spend = t.source("tx").aggregate("spend", total=st.agg.sum("eur"), n=st.agg.count())
    t.source("checks").join(spend.as_table(), lambda v, s: {**v, **s}).to("out")
    with pytest.raises(st.TopologyError, match="not a table"):
        t.source("other").as_table()
    d = TopologyTestDriver(t)
    d.pipe("tx", {"eur": 5}, key="c1")
    d.pipe("tx", {"eur": 7}, key="c1")
    d.pipe("checks", {"q": 1}, key="c1")
    assert d.read_values("out") == [{"q": 1, "total": 12, "n": 2}]


def test_an_idle_table_does_not_hold_back_the_watermark_after_a_join():
    """Only the stream's event time drives the watermark: windows after a stream-table join
    close while the table topic stays quiet (it was loaded once, at time 0)."""
    from streams import windows

    t = st.Topology("wm-table")
    users = t.table("users", key=st.serde.STR, value=st.serde.JSON)
    (
        t.source("clicks", key=st.serde.STR, value=st.serde.JSON)
        .join(users, lambda c, u: {**c, "seg": u["seg"]})
        .key_by(st.col("seg"), name="by-seg")
        .window("per-seg", windows.tumbling(ms=1_000))
        .count()
        .to("out")
    )
    d = TopologyTestDriver(t)
    d.pipe("users", {"seg": "a"}, key="u1", timestamp=0)
    d.pipe_many("clicks", [("u1", {"i": i}, 100 * i) for i in range(25)])  # up to 2.4 s
    got = [(v["window_start"], v["n"]) for v in d.read_values("out")]
    assert got == [(0, 10), (1_000, 10)]  # the window at 2 s is still open
