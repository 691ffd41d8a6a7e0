"""Standby replicas: a failover to a worker with a warm copy replays far fewer records."""

import asyncio

import streams as st
from streams.core.partitioner import partition_for
from streams.runtime.broker import TopicPartition
from streams.runtime.embedded import EmbeddedBroker


def topology():
    t = st.Topology("sb")
    t.source("in").count("counts").to("out", value=st.serde.INT)
    return t


async def failover(tmp_path, standby_replicas):
    b = EmbeddedBroker()
    b.create_topic("in", 2)
    b.create_topic("out", 2)
    for i in range(4000):  # 400 keys, spread over both partitions
        key = f"k{i % 400}".encode()
        b.append("in", partition_for(key, 2), key, b"{}", i)

    def cfg(name):
        return st.Config(
            state_dir=str(tmp_path / name),
            num_standby_replicas=standby_replicas,
            max_poll_records=500,
            commit_interval_ms=50,
        )

    a, c = st.Worker(topology(), b, cfg("a")), st.Worker(topology(), b, cfg("c"))
    ra = asyncio.create_task(a.run())
    rc = asyncio.create_task(c.run())
    changelog = [TopicPartition("sb-counts-changelog", p) for p in range(2)]
    for _ in range(500):  # both busy, all input counted and committed
        await asyncio.sleep(0.02)
        done = b.group_offsets("sb") == {
            TopicPartition("in", 0): b.end_offset(TopicPartition("in", 0)),
            TopicPartition("in", 1): b.end_offset(TopicPartition("in", 1)),
        }
        caught_up = standby_replicas == 0 or (
            c.standbys
            and c.standby_records
            >= sum(
                b.end_offset(tp)
                for tp in changelog
                if tp.partition in {t.partition for t in c.standbys}
            )
        )
        if done and a.slots and c.slots and caught_up:
            break
    else:
        raise AssertionError("workers did not settle")
    a_partition = next(iter(a.slots)).partition
    a_changelog = b.end_offset(TopicPartition("sb-counts-changelog", a_partition))
    a.stop()
    await ra
    for _ in range(500):  # c takes over a's partition
        await asyncio.sleep(0.02)
        if len(c.slots) == 2 and all(s.ready.is_set() for s in c.slots.values()):
            break
    c.stop()
    await rc
    return c.restored_records, a_changelog


def test_failover_with_standby_replays_far_fewer_records(tmp_path):
    without, changelog_size = asyncio.run(failover(tmp_path / "no", 0))
    with_standby, _ = asyncio.run(failover(tmp_path / "yes", 1))
    assert without == changelog_size > 100  # the whole changelog of the moved task
    assert with_standby < without / 10  # only what the standby had not seen yet
