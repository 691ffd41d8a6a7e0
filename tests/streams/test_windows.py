"""Event time, watermarks and windows: boundaries, grace, emit modes, lateness, idleness."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

import streams as st
from streams import agg, windows
from streams.runtime.broker import TopicPartition
from streams.testing import TopologyTestDriver


# -- window assignment -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ts", "expected"),
    [(0, [(0, 10)]), (9, [(0, 10)]), (10, [(10, 20)]), (-1, [(-10, 0)]), (-10, [(-10, 0)])],
)
def test_tumbling_boundaries_half_open(ts, expected):
    assert windows.tumbling(ms=10).windows_for(ts) == expected


@pytest.mark.parametrize(
    ("size", "advance", "ts", "expected"),
    [
        (10, 5, 12, [(5, 15), (10, 20)]),
        (10, 5, 10, [(5, 15), (10, 20)]),
        (10, 5, 9, [(0, 10), (5, 15)]),
        (10, 3, 9, [(0, 10), (3, 13), (6, 16), (9, 19)]),
        (7, 5, 12, [(10, 17)]),
        (10, 10, 10, [(10, 20)]),
        (10, 5, -1, [(-10, 0), (-5, 5)]),
    ],
)
def test_hopping_windows(size, advance, ts, expected):
    assert windows.hopping(ms=size, advance=advance).windows_for(ts) == expected


def test_hopping_overlap_count_is_size_over_advance():
    spec = windows.hopping(seconds=60, advance=10_000)
    for ts in random.Random(1).sample(range(-(10**9), 10**9), 200):
        assert len(spec.windows_for(ts)) == 6


def test_bad_window_specs():
    with pytest.raises(st.TopologyError, match="advance must be in"):
        windows.hopping(ms=10, advance=20)
    with pytest.raises(st.TopologyError, match="must be positive"):
        windows.tumbling(ms=0)
    with pytest.raises(st.TopologyError, match="grace must be >= 0"):
        windows.tumbling(ms=10, grace=-1)


# -- windowed aggregation through the driver ----------------------------------------------------
def build(spec, emit="final", ooo=0, idle=None, partitions_note=None):
    t = st.Topology("win")
    w = t.source("ev", timestamp="ts", max_out_of_orderness=ooo, idle_timeout=idle).window(
        "w", spec, emit=emit
    )
    w.aggregate(n=agg.count(), total=agg.sum("x")).to("out")
    w.late().to("late")
    return t


def pipe(d, ts, key="k", x=1):
    d.pipe("ev", {"ts": ts, "x": x}, key=key, timestamp=ts)


def rows(d, topic="out"):
    return [
        (r.key, r.value["window_start"], r.value["window_end"], r.value["n"]) for r in d.read(topic)
    ]


def test_emit_final_once_per_window_when_watermark_passes_end_plus_grace():
    d = TopologyTestDriver(build(windows.tumbling(ms=10_000, grace=2_000)))
    pipe(d, 1_000)
    pipe(d, 11_999)  # watermark 11_999: [0, 10_000) still open (end + grace = 12_000)
    pipe(d, 5_000)  # accepted within grace
    assert rows(d) == []
    pipe(d, 12_000)  # watermark reaches end + grace: the window closes, emitted once
    assert rows(d) == [("k", 0, 10_000, 2)]
    pipe(d, 6_000)  # late: its only window is closed
    pipe(d, 13_000)
    assert rows(d) == []  # never emitted again, never altered
    assert [r.value["ts"] for r in d.read("late")] == [6_000]


def test_record_exactly_at_end_belongs_to_next_window():
    d = TopologyTestDriver(build(windows.tumbling(ms=10)))
    for ts in (0, 9, 10, 20):
        pipe(d, ts)
    assert rows(d) == [("k", 0, 10, 2), ("k", 10, 20, 1)]


def test_emit_update_and_expired_state_is_deleted_with_tombstones():
    d = TopologyTestDriver(build(windows.tumbling(ms=10), emit="update"))
    pipe(d, 1)
    pipe(d, 2)
    pipe(d, 15, key="other")
    assert rows(d) == [("k", 0, 10, 1), ("k", 0, 10, 2), ("other", 10, 20, 1)]
    changelog = TopicPartition("win-w-changelog", 0)
    pipe(d, 25, key="other")  # watermark 15 closed [0,10); 25 closes [10,20): both deleted
    recs = d.broker.fetch(changelog, 0)
    assert sum(1 for m in recs if m.value is None) == 2  # tombstones for both closed windows
    store = d.tasks[next(iter(d.tasks))].stores.raw("w")
    assert [s for _, s, _ in store.fetch_all(-(1 << 62), 1 << 62)] == [20]
    assert d.broker.topics["win-w-changelog"].config["cleanup.policy"] == "compact,delete"


def test_hopping_counts_each_record_in_every_window():
    d = TopologyTestDriver(build(windows.hopping(ms=10, advance=5)))
    for ts in (1, 6, 11, 40):
        pipe(d, ts)
    assert rows(d) == [("k", -5, 5, 1), ("k", 0, 10, 2), ("k", 5, 15, 2), ("k", 10, 20, 1)]


def test_sessions_merge_when_a_record_bridges_them_and_split_by_gap():
    d = TopologyTestDriver(build(windows.session(ms=10_000), ooo=10_000))
    pipe(d, 0)
    pipe(d, 5_000)  # same session [0, 5000]
    pipe(d, 20_000)  # new session: 20_000 - 5_000 > gap
    pipe(d, 12_000)  # out of order but within bound: bridges both -> [0, 20_000], 4 records
    pipe(d, 100_000)  # watermark passes 20_000 + gap: the session closes
    assert rows(d) == [("k", 0, 20_000, 4)]


def test_a_session_closed_before_the_bridging_record_stays_closed():
    d = TopologyTestDriver(build(windows.session(ms=10_000)))
    for ts in (0, 5_000, 20_000, 12_000, 100_000):  # no out-of-orderness allowed
        pipe(d, ts)
    # [0, 5000] closed at watermark 20_000 (> 5000 + gap); 12_000 joined the open session
    assert rows(d) == [("k", 0, 5_000, 2), ("k", 12_000, 20_000, 2)]


def test_out_of_orderness_delays_closing():
    d = TopologyTestDriver(build(windows.tumbling(ms=10), ooo=5))
    pipe(d, 1)
    pipe(d, 12)  # watermark 7: [0,10) open
    pipe(d, 3)  # accepted
    assert rows(d) == []
    pipe(d, 15)  # watermark 10: closes
    assert rows(d) == [("k", 0, 10, 2)]


def test_windows_close_on_wall_clock_with_no_new_record():
    d = TopologyTestDriver(build(windows.tumbling(ms=10_000), idle=5_000))
    pipe(d, 1_000)
    d.advance_time(3_000)
    assert rows(d) == []  # not idle yet
    d.advance_time(15_000)  # idle: the watermark moves with the wall clock past the timeout
    assert rows(d) == [("k", 0, 10_000, 1)]


def test_an_idle_partition_does_not_stall_the_others():
    t = st.Topology("idle")
    a = t.source("a", timestamp="ts", idle_timeout=1_000)
    b = t.source("b", timestamp="ts", idle_timeout=1_000)
    a.merge(b).window("w", windows.tumbling(ms=100)).count().to("out")
    d = TopologyTestDriver(t)
    d.pipe("b", {"ts": 5}, key="k")  # b speaks once, then goes quiet
    d.pipe("a", {"ts": 10}, key="k")
    d.pipe("a", {"ts": 500}, key="k")
    assert d.read("out") == []  # b's watermark (5) holds the task back
    d.advance_time(2_000)  # b is idle now; a is idle too, so the clock moves it on
    d.pipe("a", {"ts": 600}, key="k")
    got = [(r.value["window_start"], r.value["n"]) for r in d.read("out")]
    assert got[:2] == [(0, 2), (500, 1)]


def test_watermarks_travel_through_repartition_topics():
    t = st.Topology("rep")
    (
        t.source("ev", timestamp="ts")
        .key_by("user")
        .window("w", windows.tumbling(ms=10))
        .count()
        .to("out")
    )
    d = TopologyTestDriver(t, partitions=3)
    for ts, user in [(1, "a"), (2, "b"), (3, "c"), (4, "a")]:
        d.pipe("ev", {"ts": ts, "user": user}, key=f"src{ts}")
    assert d.read("out") == []
    # every upstream task must pass the window end: one newer record per source partition
    from streams.core.partitioner import partition_for

    keys = {}
    for i in range(100):
        keys.setdefault(partition_for(f"adv{i}".encode(), 3), f"adv{i}")
    for p, key in sorted(keys.items()):
        d.pipe("ev", {"ts": 30 + p, "user": "z"}, key=key)
        if p < 2:
            assert [r for r in d.read("out") if r.value["window_start"] == 0] == []
    got = sorted(
        (r.key, r.value["value"] if "value" in r.value else r.value["n"])
        for r in d.read("out")
        if r.value["window_start"] == 0
    )
    assert got == [("a", 2), ("b", 1), ("c", 1)]


@settings(max_examples=40, deadline=None)
@given(
    hs.lists(hs.tuples(hs.integers(0, 2), hs.integers(0, 5_000)), min_size=1, max_size=60),
    hs.randoms(use_true_random=False),
)
def test_shuffled_within_bound_equals_batch_counts(events, rnd):
    """Shuffle a stream no further than the out-of-orderness bound: final windowed counts
    equal a batch computation over the sorted data."""
    bound = 300
    events = sorted(events, key=lambda e: e[1])
    # displace each event by < bound: sort by a jittered time
    jittered = sorted(events, key=lambda e: e[1] + rnd.randint(0, bound - 1))
    d = TopologyTestDriver(build(windows.tumbling(ms=1_000), ooo=bound))
    for k, ts in jittered:
        pipe(d, ts, key=f"k{k}")
    d.advance_time(0)
    pipe(d, 10**9, key="flush")  # the watermark passes everything
    got = {}
    for key, start, _, n in rows(d):
        if key != "flush":
            got[(key, start)] = n
    want = {}
    for k, ts in events:
        want[(f"k{k}", ts - ts % 1_000)] = want.get((f"k{k}", ts - ts % 1_000), 0) + 1
    assert got == want
    assert d.read("late") == []


def test_closed_windows_stay_closed_after_a_restart(tmp_path):
    t = build(windows.tumbling(ms=10))
    d = TopologyTestDriver(t, state_backend="rocksdb", state_dir=str(tmp_path))
    pipe(d, 1)
    pipe(d, 25)  # closes [0,10)
    assert rows(d) == [("k", 0, 10, 1)]
    d.crash()
    d.restart()
    pipe(d, 5)  # would reopen [0,10) if the watermark were forgotten
    assert rows(d) == []
    assert [r.value["ts"] for r in d.read("late")] == [5]
    d.close()


def test_sliding_windows_reproduce_the_kafka_streams_example():
    """SlidingWindows javadoc: time difference 5000 ms, records at 8000, 9200, 12400 give
    [3000;8000]={1}, [4200;9200]={1,2}, [7400;12400]={1,2,3}, [8001;13001]={2,3},
    [9201;14201]={3}."""
    t = st.Topology("sl")
    (
        t.source("ev", timestamp="ts")
        .window("w", windows.sliding(ms=5_000))
        .aggregate(vals=agg.collect("v"))
        .to("out")
    )
    d = TopologyTestDriver(t)
    for v, ts in ((1, 8_000), (2, 9_200), (3, 12_400)):
        d.pipe("ev", {"ts": ts, "v": v}, key="A")
    d.pipe("ev", {"ts": 100_000, "v": 0}, key="other")  # the watermark passes them all
    got = [
        (r.value["window_start"], r.value["window_end"], r.value["vals"])
        for r in d.read("out")
        if r.key == "A"
    ]
    assert got == [
        (3_000, 8_000, [1]),
        (4_200, 9_200, [1, 2]),
        (7_400, 12_400, [1, 2, 3]),
        (8_001, 13_001, [2, 3]),
        (9_201, 14_201, [3]),
    ]


def test_sliding_update_emits_the_window_ending_at_each_record_and_drops_late_ones():
    t = st.Topology("sl2")
    w = t.source("ev", timestamp="ts").window("w", windows.sliding(ms=10), emit="update")
    w.aggregate(n=agg.count()).to("out")
    w.late().to("late")
    d = TopologyTestDriver(t)
    for ts in (0, 5, 12, 30):
        d.pipe("ev", {"ts": ts}, key="k")
    assert [(r.value["window_start"], r.value["n"]) for r in d.read("out")] == [
        (-10, 1),
        (-5, 2),
        (2, 2),
        (20, 1),
    ]
    d.pipe("ev", {"ts": 12}, key="k")  # 12 + 10 + 1 <= 30: every window holding it closed
    assert d.read("out") == [] and len(d.read("late")) == 1


def test_end_of_input_closes_every_window_through_repartitions():
    t = st.Topology("eoi")
    (
        t.source("ev", timestamp="ts")
        .key_by("user")
        .window("w", windows.tumbling(ms=10))
        .count()
        .to("out")
    )
    d = TopologyTestDriver(t, partitions=2)
    d.pipe("ev", {"ts": 3, "user": "a"}, key="x")
    assert d.read("out") == []
    d.end_of_input()
    assert [(r.key, r.value["n"]) for r in d.read("out")] == [("a", 1)]


def test_worker_end_of_input_emits_the_last_windows(tmp_path):
    import asyncio

    from streams.runtime.embedded import EmbeddedBroker

    t = st.Topology("eoiw")
    (
        t.source("ev", timestamp="ts")
        .key_by("user")
        .window("w", windows.tumbling(ms=10))
        .count()
        .to("out")
    )
    b = EmbeddedBroker(default_partitions=2)
    b.create_topic("ev", 2)
    b.create_topic("out", 2)
    for i in range(20):
        b.append("ev", i % 2, None, st.serde.JSON.serialize({"ts": i, "user": f"u{i % 3}"}), i)
    w = st.Worker(t, b, st.Config(state_dir=str(tmp_path)))
    asyncio.run(w.run(until_idle=True, end_of_input=True))
    got = sorted(
        (
            m.key.decode(),
            st.serde.JSON.deserialize(m.value)["window_start"],
            st.serde.JSON.deserialize(m.value)["n"],
        )
        for p in range(2)
        for m in b.fetch(TopicPartition("out", p), 0)
    )
    want = sorted(
        {
            (f"u{u}", s, sum(1 for i in range(20) if i % 3 == u and s <= i < s + 10))
            for u in range(3)
            for s in (0, 10)
        }
    )
    assert got == want
