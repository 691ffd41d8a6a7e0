"""The embedded worker gives the same outputs as the test driver, across partitions and
repartition topics, and commits what it processed."""

import asyncio
from types import SimpleNamespace

import pytest

import streams as st
from streams.runtime.broker import TopicPartition
from streams.runtime.embedded import EmbeddedBroker
from streams.testing import TopologyTestDriver


def build():
    t = st.Topology("wk")
    s = t.source("in")
    big, small = s.filter(st.col("amount").is_not_null()).branch(
        st.col("amount") > 50, st.lit(True)
    )
    big.with_columns(flag=st.lit("big")).key_by("user").repartition("by-user").to("big")
    small.flat_map_values(lambda v: [v, {**v, "copy": True}]).to("small")
    return t


def records(n=500):
    return [
        (f"k{i % 17}", {"user": f"u{i % 7}", "amount": (i * 37) % 100 if i % 11 else None})
        for i in range(n)
    ]


def produce(b, recs, partitions):
    from streams.core.partitioner import partition_for

    for i, (k, v) in enumerate(recs):
        kb = k.encode()
        b.append("in", partition_for(kb, partitions), kb, st.serde.JSON.serialize(v), i)


def collect(b, topic):
    out = []
    for p in range(b.partition_count(topic)):
        for m in b.fetch(TopicPartition(topic, p), 0):
            out.append(
                (
                    p,
                    m.key.decode() if m.key else None,
                    st.serde.JSON.deserialize(m.value),
                    m.timestamp,
                )
            )
    return out


@pytest.mark.parametrize("partitions", [1, 3])
def test_worker_matches_driver(partitions):
    recs = records()
    b = EmbeddedBroker(default_partitions=partitions)
    for topic in ("in", "big", "small"):
        b.create_topic(topic, partitions)
    produce(b, recs, partitions)
    asyncio.run(st.Worker(build(), b, st.Config(max_poll_records=64)).run(until_idle=True))

    d = TopologyTestDriver(build(), partitions=partitions)
    for i, (k, v) in enumerate(recs):
        d.pipe("in", v, key=k, timestamp=i)
    for topic in ("big", "small"):
        want = sorted((r.partition, r.key, repr(r.value), r.timestamp) for r in d.read(topic))
        got = sorted((p, k, repr(v), t) for p, k, v, t in collect(b, topic))
        assert got == want and got


def test_worker_commits_offsets_and_resumes():
    t = st.Topology("resume")
    t.source("in").map_values(st.col("n") + 1).to("out")
    b = EmbeddedBroker()
    b.create_topic("in", 2)
    b.create_topic("out", 2)
    for i in range(10):
        b.append("in", i % 2, None, st.serde.JSON.serialize({"n": i}), i)
    asyncio.run(st.Worker(t, b).run(until_idle=True))
    assert b.group_offsets("resume") == {TopicPartition("in", 0): 5, TopicPartition("in", 1): 5}
    b.append("in", 0, None, st.serde.JSON.serialize({"n": 100}), 99)
    asyncio.run(st.Worker(t, b).run(until_idle=True))
    values = sorted(v for *_, v, _ in [(p, k, v, ts) for p, k, v, ts in collect(b, "out")])
    assert values == [*range(1, 11), 101]  # nothing reprocessed after a clean commit


def test_worker_exactly_once_on_embedded():
    t = st.Topology("eos")
    t.source("in").map_values(st.col("n") * 2).to("out")
    b = EmbeddedBroker()
    b.create_topic("in", 1)
    b.create_topic("out", 1)
    for i in range(100):
        b.append("in", 0, None, st.serde.JSON.serialize({"n": i}), i)
    asyncio.run(
        st.Worker(t, b, st.Config(processing_guarantee="exactly_once")).run(until_idle=True)
    )
    assert [v for *_, v, _ in collect(b, "out")] == [i * 2 for i in range(100)]
    assert b.group_offsets("eos") == {TopicPartition("in", 0): 100}


def test_worker_failure_propagates_and_does_not_commit_past_it():
    t = st.Topology("fail")
    t.source("in").map_values(lambda v: 10 // v["n"], name="div").to("out")
    b = EmbeddedBroker()
    b.create_topic("in", 1)
    b.create_topic("out", 1)
    for n in (1, 0, 2):
        b.append("in", 0, None, st.serde.JSON.serialize({"n": n}), 0)
    with pytest.raises(st.ProcessingError, match="step 'div'.*offset 1"):
        asyncio.run(st.Worker(t, b, st.Config(max_poll_records=1)).run(until_idle=True))
    assert b.group_offsets("fail").get(TopicPartition("in", 0), 0) <= 1


def test_missing_source_topic_is_a_clear_error():
    t = st.Topology("miss")
    t.source("in").to("out")
    b = EmbeddedBroker(auto_create=False)
    with pytest.raises(st.BrokerError, match="source topic\\(s\\) in do not exist"):
        asyncio.run(st.Worker(t, b).run(until_idle=True))


async def test_two_workers_share_partitions_and_stop():
    t = st.Topology("pair")
    t.source("in").map_values(st.col("n")).to("out")
    b = EmbeddedBroker()
    b.create_topic("in", 4)
    b.create_topic("out", 4)
    for i in range(400):
        b.append("in", i % 4, None, st.serde.JSON.serialize({"n": i}), i)
    w1, w2 = st.Worker(t, b), st.Worker(t, b)
    r1 = asyncio.create_task(w1.run())
    r2 = asyncio.create_task(w2.run())
    for _ in range(200):
        await asyncio.sleep(0.01)
        if len(collect(b, "out")) >= 400 and w1.slots and w2.slots:
            break
    assert len(w1.slots) == len(w2.slots) == 2
    w1.stop()
    w2.stop()
    await asyncio.gather(r1, r2)
    assert sorted(v for _, _, v, _ in collect(b, "out")) == list(range(400))


def test_stateful_step_over_inputs_with_different_partition_counts_is_rejected():
    t = st.Topology("copart")
    t.source("a").merge(t.source("b")).count("n").to("out", value=st.serde.INT)
    assert t.compile().subtopologies[0].copartitioned == (("n", ("a", "b")),)
    b = EmbeddedBroker()
    b.create_topic("a", 2)
    b.create_topic("b", 3)
    with pytest.raises(
        st.BrokerError, match=r"step 'n' reads a \(2 partitions\), b \(3 partitions\)"
    ):
        asyncio.run(st.Worker(t, b, st.Config(state_backend="memory")).run(until_idle=True))


def test_repartition_topics_are_purged_up_to_the_committed_offsets():
    t = st.Topology("purge")
    t.source("in").key_by("k").count("n").to("out")
    b = EmbeddedBroker(default_partitions=2)
    b.create_topic("in", 2)
    b.create_topic("out", 2)
    for i in range(100):
        b.append("in", i % 2, None, b'{"k": "k%d"}' % (i % 7), i)
    config = st.Config(state_backend="memory", repartition_purge_interval_ms=1)
    asyncio.run(st.Worker(t, b, config).run(until_idle=True))
    rep = TopicPartition("purge-n-repartition", 0)
    ends = [b.end_offset(TopicPartition(rep.topic, p)) for p in range(2)]
    assert sum(ends) == 100
    # everything the counting tasks committed is gone from the repartition topic ...
    assert [b.start_offset(TopicPartition(rep.topic, p)) for p in range(2)] == [
        b.committed_offset("purge", TopicPartition(rep.topic, p)) for p in range(2)
    ]
    assert all(b.start_offset(TopicPartition(rep.topic, p)) > 0 for p in range(2))
    # ... and the counts are exact
    finals = {}
    for p in range(2):
        for m in b.fetch(TopicPartition("out", p), 0):
            finals[m.key] = m.value
    assert sorted(finals.values()) == sorted(
        str(sum(1 for i in range(100) if i % 7 == k)).encode() for k in range(7)
    )


def test_a_bounded_run_ends_with_idle_inputs_behind_a_repartition():
    """An idle task's watermark moves with the wall clock; announced at every poll, its control
    records were new input downstream forever and ``until_idle`` never ended."""
    from streams import windows

    t = st.Topology("idle-end")
    (
        t.source("ev", timestamp="ts", idle_timeout=50)
        .key_by("user")
        .window("w", windows.tumbling(ms=10_000))
        .count()
        .to("out")
    )
    b = EmbeddedBroker(default_partitions=2)
    b.create_topic("ev", 2)
    b.create_topic("out", 2)
    for i in range(20_000):  # partition 1 stays empty: idle from the start
        b.append("ev", 0, None, b'{"ts": %d, "user": "u%d"}' % (i * 500, i % 3), i)

    async def bounded() -> None:
        w = st.Worker(t, b, st.Config(state_backend="memory"))
        await asyncio.wait_for(w.run(until_idle=True, end_of_input=True), 60)

    asyncio.run(bounded())
    windows_out = [m for p in range(2) for m in b.fetch(TopicPartition("out", p), 0)]
    assert len(windows_out) == 3 * 1000  # 10 s windows over 10,000 s, three users each


class _EarlyFetchConsumer:
    """An embedded consumer that behaves as aiokafka does: the first assignment is published
    and fetched for before the listener's ``on_partitions_assigned`` has run (aiokafka awaits
    its offset-refresh task in between)."""

    def __init__(self, inner, records):
        self._inner = inner
        self._held = None
        self._records = records  # "attrs": records with attributes only, as aiokafka's

    def __getattr__(self, name):
        return getattr(self._inner, name)

    async def subscribe(self, topics, listener):
        outer = self

        class Hold:
            async def on_partitions_revoked(self, revoked):
                await listener.on_partitions_revoked(revoked)

            async def on_partitions_assigned(self, assigned):
                if outer._held is None:
                    outer._held = (listener, assigned)  # delivered on the next poll
                else:
                    await listener.on_partitions_assigned(assigned)

        await self._inner.subscribe(topics, Hold())

    async def getmany(self, timeout_ms=100, max_records=10_000):
        if self._held is not None and self._held[0] is not None:
            listener, assigned = self._held
            self._held = (None, None)
            await listener.on_partitions_assigned(assigned)
        out = await self._inner.getmany(timeout_ms, max_records)
        if self._records == "attrs":
            fields = ("key", "value", "timestamp", "headers", "offset")
            out = {
                tp: [SimpleNamespace(**dict(zip(fields, m, strict=True))) for m in ms]
                for tp, ms in out.items()
            }
        return out


@pytest.mark.parametrize("records", ["tuples", "attrs"])
def test_records_fetched_before_the_assignment_callback_are_not_lost(records):
    b = EmbeddedBroker(default_partitions=1)
    for topic in ("in", "out"):
        b.create_topic(topic, 1)
    for i in range(50):
        b.append("in", 0, b"k", st.serde.JSON.serialize({"n": i}), i)
    make = b.consumer
    b.consumer = lambda *a, **kw: _EarlyFetchConsumer(make(*a, **kw), records)  # type: ignore[method-assign]
    t = st.Topology("early")
    t.source("in").map_values(st.col("n") * 2).to("out")
    asyncio.run(st.Worker(t, b).run(until_idle=True))
    got = [st.serde.JSON.deserialize(m.value) for m in b.fetch(TopicPartition("out", 0), 0)]
    assert got == [2 * i for i in range(50)]
