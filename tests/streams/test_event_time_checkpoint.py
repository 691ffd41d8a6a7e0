"""Event time committed with the offsets: a restarted task knows the watermarks it had.

A restarted (or moved) task reads only the records after its committed offsets. The event time
those earlier records carried (a source partition's largest timestamp, the watermarks upstream
tasks announced on a repartition partition) travels in the committed offsets' metadata, as
Kafka Streams keeps partition time there. Without it, the last windows behind a repartition
never closed after a restart (found by ``python -m bench chaos``).
"""

import asyncio

import streams as st
from streams import windows
from streams.runtime.broker import TopicPartition
from streams.runtime.config import Config
from streams.runtime.embedded import EmbeddedBroker
from streams.runtime.watermarks import CHECKPOINT_PREFIX, END_OF_TIME, IDLE, WatermarkTracker
from streams.runtime.worker import Worker
from streams.testing import TopologyTestDriver


def counts_per_window():
    t = st.Topology("ckpt")
    (
        t.source("ev", timestamp="ts")
        .key_by("user")
        .window("w", windows.tumbling(ms=10_000))
        .count()
        .to("out")
    )
    return t


def windows_of(records):
    return sorted((r.key, r.value["window_start"]) for r in records)


def pipe(d, partition, ts, user):
    d.pipe_raw("ev", None, f'{{"ts": {ts}, "user": "{user}"}}'.encode(), partition=partition)


def test_a_restart_keeps_the_event_time_of_every_upstream_task():
    d = TopologyTestDriver(counts_per_window(), partitions=2)  # memory stores: nothing local
    pipe(d, 0, 1_000, "a")
    pipe(d, 1, 2_000, "b")
    pipe(d, 0, 15_000, "a")
    pipe(d, 1, 30_000, "b")  # upstream task 1 is far ahead; task 0 holds the watermark
    assert windows_of(d.read("out")) == [("a", 0), ("b", 0)]
    d.crash()
    d.restart()
    assert d.read("out") == []  # closed windows stay closed: nothing emitted twice
    # only upstream task 0 gets new input; task 1 must still count with its 30 s
    pipe(d, 0, 25_000, "a")
    assert windows_of(d.read("out")) == [("a", 10_000)]


def test_a_restart_does_not_reopen_closed_windows():
    d = TopologyTestDriver(counts_per_window(), partitions=1)
    pipe(d, 0, 1_000, "a")
    pipe(d, 0, 12_000, "a")
    assert windows_of(d.read("out")) == [("a", 0)]
    d.crash()
    d.restart()
    pipe(d, 0, 2_000, "a")  # late for the closed window [0, 10 s): not counted again
    pipe(d, 0, 25_000, "a")
    assert windows_of(d.read("out")) == [("a", 10_000)]


def test_uncommitted_event_time_is_not_kept():
    d = TopologyTestDriver(counts_per_window(), partitions=1, auto_commit=False)
    pipe(d, 0, 1_000, "a")
    d.commit()
    pipe(d, 0, 12_000, "a")  # processed (the window closes), never committed
    assert windows_of(d.read("out")) == [("a", 0)]
    d.crash()
    d.restart()
    # the commit did not cover the close, so the replayed record closes the window again (an
    # at-least-once duplicate; under exactly-once the first output was never committed)
    assert windows_of(d.read("out")) == [("a", 0)]


def test_worker_commits_event_time_in_the_offset_metadata():
    broker = EmbeddedBroker(default_partitions=2)
    broker.create_topic("ev", 2)
    broker.create_topic("out", 2)
    for p, ts in [(0, 1_000), (1, 2_000), (0, 15_000), (1, 30_000)]:
        broker.append("ev", p, None, f'{{"ts": {ts}, "user": "u{p}"}}'.encode(), ts)
    config = Config(state_backend="memory")
    asyncio.run(Worker(counts_per_window(), broker, config).run(until_idle=True))
    meta = broker.committed_metadata("ckpt", TopicPartition("ev", 1))
    assert meta.startswith(CHECKPOINT_PREFIX) and '"m":30000' in meta
    rep = [t for t in broker.topics if t.endswith("-repartition")]
    assert rep, broker.topics
    # a second run with fresh (memory) stores, input only on partition 0: the downstream tasks
    # take the upstream watermarks back from the metadata, so the 10-20 s window closes
    broker.append("ev", 0, None, b'{"ts": 25000, "user": "u0"}', 25_000)
    asyncio.run(Worker(counts_per_window(), broker, config).run(until_idle=True))
    out = [
        (m.key, m.value)
        for p in range(2)
        for m in broker.fetch(TopicPartition("out", p), 0)
        if b'"window_start":10000' in (m.value or b"")
    ]
    assert [k for k, _ in out] == [b"u0"], out


def test_checkpoint_round_trip_and_what_it_leaves_out():
    w = WatermarkTracker({"src": (500, None)}, [("src", 0), ("rep", 0)], start_ms=0)
    w.observe("src", 0, 9_000, now_ms=0)
    w.observe_control("rep", 0, upstream=0, count=3, watermark=4_000)
    w.observe_control("rep", 0, upstream=1, count=3, watermark=IDLE)
    w.observe_control("rep", 0, upstream=2, count=3, watermark=END_OF_TIME)
    fresh = WatermarkTracker({"src": (500, None)}, [("src", 0), ("rep", 0)], start_ms=0)
    assert fresh.restore("src", 0, w.checkpoint("src", 0, 4_000), now_ms=0) == 4_000
    assert fresh.restore("rep", 0, w.checkpoint("rep", 0, None), now_ms=0) is None
    # the end of a bounded run is no promise for the next run: upstream 2 must speak again
    assert fresh.current(0) == -(1 << 63)
    fresh.observe_control("rep", 0, upstream=2, count=3, watermark=6_000)
    assert fresh.current(0) == 4_000  # min(source 9000 - 500, upstream 0 at 4000)
    # metadata someone else wrote is ignored, not misread
    assert fresh.restore("src", 0, "some other tool's metadata", now_ms=0) is None
    assert fresh.restore("src", 0, CHECKPOINT_PREFIX + "{not json", now_ms=0) is None


def test_checkpoint_stays_under_kafkas_metadata_limit():
    w = WatermarkTracker({}, [("rep", 0)], start_ms=0)
    for u in range(500):
        w.observe_control("rep", 0, upstream=u, count=500, watermark=1_700_000_000_000 + u)
    cp = w.checkpoint("rep", 0, 1_700_000_000_000)
    assert len(cp) <= 4000
    fresh = WatermarkTracker({}, [("rep", 0)], start_ms=0)
    assert fresh.restore("rep", 0, cp, now_ms=0) == 1_700_000_000_000
