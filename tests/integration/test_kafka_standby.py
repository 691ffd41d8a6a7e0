"""Standby replicas on the real broker: failover replays far fewer changelog records."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

import streams as st
from streams.core.partitioner import partition_for
from streams.runtime.broker import TopicPartition, TopicSpec
from streams.runtime.kafka import KafkaBroker

pytestmark = pytest.mark.kafka


async def failover(bootstrap: str, tmp, standby_replicas: int) -> tuple[int, int]:
    run = uuid.uuid4().hex[:8]
    app, src, out = f"sb-{run}", f"in-{run}", f"out-{run}"
    b = KafkaBroker(bootstrap)
    await b.create_topics([TopicSpec(src, 2), TopicSpec(out, 2)])
    p = b.producer()
    now = int(time.time() * 1000)
    for i in range(4000):
        key = f"k{i % 400}".encode()
        p.send_batch(src, partition_for(key, 2), [(key, b"{}", now, ())])
    await p.flush()
    await p.close()

    def topo() -> st.Topology:
        t = st.Topology(app)
        t.source(src).count("counts").to(out, value=st.serde.INT)
        return t

    def cfg(name: str) -> st.Config:
        return st.Config(
            state_dir=str(tmp / name), num_standby_replicas=standby_replicas, commit_interval_ms=100
        )

    a, c = st.Worker(topo(), b, cfg("a")), st.Worker(topo(), b, cfg("c"))
    ra = asyncio.create_task(a.run())
    await asyncio.sleep(1)
    rc = asyncio.create_task(c.run())
    changelog = f"{app}-counts-changelog"
    consumer = b.consumer(None)
    offsets = b.consumer(app)  # reads the group's committed offsets (never joins it)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # a and c each own one task; all counted; standby warm
        await asyncio.sleep(0.5)
        if not (len(a.slots) == 1 and len(c.slots) == 1):
            continue
        if a.processed + c.processed < 4000:
            continue
        if standby_replicas and not c.standbys:
            continue
        a_part = next(iter(a.slots)).partition
        # a's task has committed all its input, so no more changelog records will come (under
        # load, a's last commit otherwise wrote most of them after the standby check)
        src_tp = TopicPartition(src, a_part)
        src_end = (await consumer.end_offsets([src_tp]))[src_tp]
        if await offsets.committed(src_tp) != src_end:
            continue
        end = (await consumer.end_offsets([TopicPartition(changelog, a_part)]))[
            TopicPartition(changelog, a_part)
        ]
        if end > 0 and (standby_replicas == 0 or c.standby_records >= end):
            break
    else:
        raise AssertionError(f"no steady state: a={a.slots} c={c.slots} standby={c.standbys}")
    await consumer.close()
    await offsets.close()
    before = c.restored_records  # c's own task was restored when it joined: not the failover
    a.stop()
    await ra
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # c takes over a's task
        await asyncio.sleep(0.5)
        if len(c.slots) == 2 and all(s.ready.is_set() for s in c.slots.values()):
            break
    c.stop()
    await rc
    await b.close()
    return c.restored_records - before, end


def test_failover_with_standby_replays_far_fewer_records(kafka_bootstrap, tmp_path):
    without, changelog = asyncio.run(failover(kafka_bootstrap, tmp_path / "no", 0))
    with_standby, _ = asyncio.run(failover(kafka_bootstrap, tmp_path / "yes", 1))
    assert without >= changelog > 100  # c rebuilt a's task from its whole changelog
    assert with_standby < without / 10  # the warm copy needed (almost) nothing
