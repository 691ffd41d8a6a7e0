"""Async steps in the worker, on the embedded broker: calls overlap across batches, a commit
never covers a record still in flight, a failed call stops the worker without committing past
it, and under exactly-once a crash mid-flight loses and repeats nothing."""

import asyncio

import pytest

import streams as st
from streams.runtime.broker import TopicPartition
from streams.runtime.embedded import EmbeddedBroker


class Service:
    """A fake remote call: ``latency`` seconds, counts calls in flight."""

    def __init__(self, latency=0.02, fail_at=None):
        self.latency, self.fail_at = latency, fail_at
        self.in_flight = self.peak = self.calls = 0

    async def __call__(self, v):
        self.calls += 1
        if self.fail_at is not None and self.calls >= self.fail_at:
            raise ConnectionError("service gone")
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self.latency)
        finally:
            self.in_flight -= 1
        return v["id"] * 10


def broker(n, partitions=1):
    b = EmbeddedBroker()
    b.create_topic("in", partitions)
    b.create_topic("out", partitions)
    for i in range(n):
        b.append("in", i % partitions, None, st.serde.JSON.serialize({"id": i}), i)
    return b


def outputs(b, partitions=1):
    return [
        st.serde.INT.deserialize(m.value)
        for p in range(partitions)
        for m in b.fetch(TopicPartition("out", p), 0)
    ]


def topology(svc, app="wa", **kw):
    t = st.Topology(app)
    t.source("in").map_async(svc, **kw).to("out", value=st.serde.INT)
    return t


def test_calls_overlap_across_batches_up_to_the_concurrency():
    # batches of 10 records, concurrency 100: a step that awaited each batch would never have
    # more than 10 calls in flight (and would take 50 x 20 ms here)
    svc = Service(latency=0.02)
    b = broker(500, partitions=2)
    cfg = st.Config(max_poll_records=10)
    asyncio.run(st.Worker(topology(svc, concurrency=100), b, cfg).run(until_idle=True))
    assert sorted(outputs(b, 2)) == [i * 10 for i in range(500)]
    assert 10 < svc.peak <= 200  # (two tasks, 100 each)
    assert b.group_offsets("wa") == {TopicPartition("in", 0): 250, TopicPartition("in", 1): 250}


def test_results_keep_input_order_per_partition():
    svc = Service(latency=0.001)
    b = broker(300)
    asyncio.run(st.Worker(topology(svc, concurrency=16), b).run(until_idle=True))
    assert outputs(b) == [i * 10 for i in range(300)]


async def test_a_commit_never_covers_a_record_whose_result_was_not_emitted():
    svc = Service(latency=0.03)
    b = broker(400)
    w = st.Worker(topology(svc, concurrency=50), b, st.Config(max_poll_records=20))
    run = asyncio.create_task(w.run())
    checked = 0
    for _ in range(400):
        await asyncio.sleep(0.01)
        if svc.in_flight:  # commit with calls in flight: it must wait for them
            await w.commit()
            committed = b.group_offsets("wa").get(TopicPartition("in", 0), 0)
            assert len(outputs(b)) >= committed > 0
            checked += 1
        if len(outputs(b)) == 400:
            break
    w.stop()
    await run
    assert checked > 0 and outputs(b) == [i * 10 for i in range(400)]


def test_a_failed_call_stops_the_worker_and_nothing_past_it_is_committed():
    svc = Service(latency=0.001, fail_at=150)
    b = broker(300)
    with pytest.raises(st.ProcessingError, match="step 'score'.*ConnectionError: service gone"):
        asyncio.run(
            st.Worker(topology(svc, concurrency=10, name="score"), b, st.Config()).run(
                until_idle=True
            )
        )
    committed = b.group_offsets("wa").get(TopicPartition("in", 0), 0)
    assert committed <= len(outputs(b)) < 150


@pytest.mark.parametrize("guarantee", ["exactly_once", "at_least_once"])
def test_a_crash_with_calls_in_flight_loses_nothing_and_repeats_nothing_under_eos(guarantee):
    # the first run dies (its service fails) with calls in flight, results emitted since the
    # last commit and (exactly-once) an open transaction; the second run finishes
    b = broker(600)
    cfg = st.Config(processing_guarantee=guarantee, max_poll_records=25, commit_interval_ms=100)
    with pytest.raises(st.ProcessingError):
        asyncio.run(
            st.Worker(topology(Service(0.005, fail_at=400), concurrency=10), b, cfg).run(
                until_idle=True
            )
        )
    committed = b.group_offsets("wa")[TopicPartition("in", 0)]
    assert 0 < committed < 400  # it committed some, then crashed mid-stream
    if guarantee == "exactly_once":
        assert len(outputs(b)) == committed  # what was not committed is not visible
    asyncio.run(st.Worker(topology(Service(0.005), concurrency=10), b, cfg).run(until_idle=True))
    if guarantee == "exactly_once":
        assert outputs(b) == [i * 10 for i in range(600)]
    else:  # (results emitted after the last commit come again: at-least-once)
        assert sorted(set(outputs(b))) == [i * 10 for i in range(600)]
