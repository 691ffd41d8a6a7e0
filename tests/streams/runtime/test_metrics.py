"""Worker metrics on the embedded broker: counters move with traffic, per-worker registries."""

import asyncio

import streams as st
from streams import agg, windows
from streams.core.partitioner import partition_for
from streams.runtime.broker import TopicPartition
from streams.runtime.embedded import EmbeddedBroker
from streams.runtime.metrics import CountingCollector, health


def counting_topology(app="m"):
    t = st.Topology(app)
    t.source("in").count("counts").to("out", value=st.serde.INT)
    return t


def feed(b, n, start=0, partitions=2):
    for i in range(start, start + n):
        k = f"k{i % 10}".encode()
        b.append("in", partition_for(k, partitions), k, b"{}", i)


def config(tmp_path, name="w", **kw):
    return st.Config(state_dir=str(tmp_path / name), commit_interval_ms=20, **kw)


def total(w, name, **labels):
    """Sum of a metric's samples over every label set matching ``labels``."""
    out = 0.0
    for fam in w.metrics.registry.collect():
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                out += s.value
    return out


def test_counters_move_with_traffic_and_count_batches_not_records(tmp_path):
    b = EmbeddedBroker()
    b.create_topic("in", 2)
    b.create_topic("out", 2)
    feed(b, 300)
    w = st.Worker(counting_topology(), b, config(tmp_path))
    asyncio.run(w.run(until_idle=True))
    assert total(w, "streams_records_in_total") == 300
    # one output per key per batch at most: fewer than 300, more than 0, exactly what was written
    out = sum(b.end_offset(TopicPartition("out", p)) for p in range(2))
    assert total(w, "streams_records_out_total") == out > 0
    batches = total(w, "streams_process_batch_seconds_count")
    assert 2 <= batches < 300  # observed per batch
    assert total(w, "streams_commit_seconds_count") >= 1
    assert total(w, "streams_rebalances_total") >= 1
    assert total(w, "streams_store_entries", store="counts") == 0  # closed: no live tasks

    # a second run over more data: same worker type, a fresh registry, counts only the new input
    feed(b, 100, start=300)
    w2 = st.Worker(counting_topology(), b, config(tmp_path))
    asyncio.run(w2.run(until_idle=True))
    assert total(w2, "streams_records_in_total") == 100
    assert total(w, "streams_records_in_total") == 300  # registries are not shared


async def test_live_gauges_lag_and_store_sizes_while_running(tmp_path):
    b = EmbeddedBroker()
    b.create_topic("in", 2)
    b.create_topic("out", 2)
    feed(b, 200)
    w = st.Worker(counting_topology(), b, config(tmp_path))
    run = asyncio.create_task(w.run())
    try:
        for _ in range(200):
            await asyncio.sleep(0.02)
            if total(w, "streams_records_in_total") == 200:
                break
        await w.refresh_metrics()
        assert total(w, "streams_consumer_lag", topic="in") == 0
        for _ in range(250):  # a commit writes the stores back: sizes count committed entries
            if total(w, "streams_store_entries", store="counts") == 10:
                break
            await asyncio.sleep(0.02)
        assert total(w, "streams_store_entries", store="counts") == 10
        assert total(w, "streams_tasks", state="running") == 2
        # lag shows up when input arrives while the partitions are held back
        assert w._consumer is not None
        w._consumer.pause([TopicPartition("in", 0), TopicPartition("in", 1)])
        feed(b, 50, start=200)
        await w.refresh_metrics()
        assert total(w, "streams_consumer_lag", topic="in") == 50
        text = w.metrics.render().decode()
        assert 'streams_consumer_lag{partition="0",topic="in"}' in text
    finally:
        w.stop()
        await run


async def test_health_is_unhealthy_on_a_stalled_partition(tmp_path):
    b = EmbeddedBroker()
    b.create_topic("in", 1)
    b.create_topic("out", 1)
    w = st.Worker(counting_topology(), b, config(tmp_path, stall_timeout_ms=200))
    ok, body = await health(w)
    assert not ok and body["status"] == "starting"
    run = asyncio.create_task(w.run())
    try:
        for _ in range(100):
            await asyncio.sleep(0.02)
            ok, body = await health(w)
            if ok:
                break
        assert ok and body["status"] == "ready" and body["tasks"]["0_0"]["state"] == "running"
        # an idle partition without lag is fine however long it idles
        await asyncio.sleep(0.3)
        assert (await health(w))[0]
        # lag and no progress for stall_timeout: stalled
        assert w._consumer is not None
        w._consumer.pause([TopicPartition("in", 0)])
        feed(b, 5, partitions=1)
        ok, body = await health(w)
        assert not ok and body["status"] == "stalled" and body["healthy"] is False
        assert body["stalled"][0]["topic"] == "in" and body["stalled"][0]["lag"] == 5
        w._consumer.resume([TopicPartition("in", 0)])
        for _ in range(100):
            await asyncio.sleep(0.02)
            ok, body = await health(w)
            if ok:
                break
        assert ok, body
    finally:
        w.stop()
        await run


def config_without(tmp_path, **kw):
    return st.Config(state_dir=str(tmp_path), commit_interval_ms=20, **kw)


def test_late_and_dead_lettered_records_are_counted(tmp_path):
    t = st.Topology("late", on_error="dead_letter")
    w = t.source("ev", timestamp="ts", on_error="dead_letter").window(
        "w", windows.tumbling(ms=10, grace=0)
    )
    w.aggregate(n=agg.count()).to("out")
    b = EmbeddedBroker()
    for topic in ("ev", "out"):
        b.create_topic(topic, 1)
    for ts in (1, 25, 3, 4):  # 25 closes [0, 10): 3 and 4 are late
        b.append("ev", 0, b"k", b'{"ts": %d}' % ts, ts)
    b.append("ev", 0, b"k", b"{broken", 30)
    worker = st.Worker(t, b, config_without(tmp_path, max_poll_records=1))  # a batch each
    asyncio.run(worker.run(until_idle=True))
    assert total(worker, "streams_late_records_total") == 2
    assert total(worker, "streams_dead_lettered_records_total") == 1
    assert total(worker, "streams_records_in_total") == 5


def test_restore_progress_is_reported(tmp_path):
    b = EmbeddedBroker()
    b.create_topic("in", 1)
    b.create_topic("out", 1)
    feed(b, 100, partitions=1)
    first = st.Worker(counting_topology(), b, config(tmp_path, "a"))
    asyncio.run(first.run(until_idle=True))
    # a new worker without local state restores the whole changelog
    second = st.Worker(counting_topology(), b, config(tmp_path, "b"))
    asyncio.run(second.run(until_idle=True))
    changelog = b.end_offset(TopicPartition("m-counts-changelog", 0))
    assert changelog > 0
    assert total(second, "streams_restored_records_total", store="counts") == changelog
    assert total(second, "streams_restore_remaining_records", store="counts") == 0
    assert total(first, "streams_restored_records_total") == 0


class _Sink:
    def __init__(self):
        self.sent = []

    def send_batch(self, topic, partition, records):
        self.sent.append((topic, len(records)))

    def partitions(self, topic):
        return 3


def test_counting_collector_counts_outputs_only():
    inner = _Sink()
    c = CountingCollector(inner, frozenset({"out", "app-x-repartition"}))
    c.send_batch("out", 0, [(b"k", b"v", 1, ()), (b"k", b"w", 2, ())])
    c.send_batch("app-counts-changelog", 0, [(b"k", b"1", 1, ())])  # changelogs: not outputs
    c.send_batch("app-x-repartition", 1, [(None, None, 5, (("streams.wm", b"x"),))])  # control
    c.send_batch("app-x-repartition", 1, [(b"k", None, 5, ())])  # a tombstone is an output
    assert c.records == 3
    assert len(inner.sent) == 4 and c.partitions("out") == 3
