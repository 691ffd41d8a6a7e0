"""A partition with lag whose task makes no progress is reported: log, metric, health."""

import asyncio
import logging

import streams as st
from streams.runtime.broker import TopicPartition
from streams.runtime.embedded import EmbeddedBroker
from streams.runtime.metrics import health
from tests.streams.runtime.test_metrics import config, counting_topology, feed


def test_a_stalled_partition_is_logged_counted_and_unhealthy(tmp_path, caplog):
    b = EmbeddedBroker()
    b.create_topic("in", 2)
    b.create_topic("out", 2)
    feed(b, 100)
    w = st.Worker(counting_topology(), b, config(tmp_path, stall_timeout_ms=300))
    tp = TopicPartition("in", 0)
    caplog.set_level(logging.INFO, logger="streams.worker")

    async def until(cond, timeout=10.0):
        for _ in range(int(timeout / 0.05)):
            if cond():
                return True
            await asyncio.sleep(0.05)
        return False

    async def go():
        runner = asyncio.create_task(w.run())
        try:
            assert await until(lambda: w.processed == 100)
            ok, body = await health(w)
            assert ok and body["status"] == "ready"
            w._consumer.pause([tp])  # the kind of bug that stalls a consumer silently
            feed(b, 40, start=100)
            assert await until(lambda: w.metrics.sample("streams_stalled_partitions") == 1)
            ok, body = await health(w)
            assert not ok and body["status"] == "stalled"
            assert [(s["topic"], s["partition"]) for s in body["stalled"]] == [("in", 0)]
            assert body["stalled"][0]["lag"] > 0
            w._consumer.resume([tp])
            assert await until(lambda: w.metrics.sample("streams_stalled_partitions") == 0)
            assert await until(lambda: w.processed == 140)
        finally:
            w.stop()
            await runner

    asyncio.run(go())
    messages = [r.getMessage() for r in caplog.records]
    assert sum("in-0 is stalled" in m for m in messages) == 1  # once per episode, not per check
    assert any("in-0 is moving again" in m for m in messages)


def test_until_reachable_retries_connection_errors_only():
    import pytest

    from streams.core.errors import BrokerError
    from streams.runtime.liveness import until_reachable

    calls = []

    async def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise BrokerError("kafka: connecting to h:1 failed: KafkaConnectionError")
        return 42

    assert asyncio.run(until_reachable(flaky, 10)) == 42 and len(calls) == 3

    async def broken():
        raise BrokerError("kafka: topic 'x' does not exist")

    with pytest.raises(BrokerError, match="does not exist"):  # not retried
        asyncio.run(until_reachable(broken, 10))

    async def down():
        raise BrokerError("kafka: connecting to h:1 failed")

    with pytest.raises(BrokerError, match="connecting"):  # gives up after the timeout
        asyncio.run(until_reachable(down, 0.5))
