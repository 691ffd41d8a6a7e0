"""Stateful topologies on the embedded worker: commits, restores, same results as the driver."""

import asyncio

import pytest

import streams as st
from streams import agg
from streams.runtime.broker import TopicPartition
from streams.runtime.embedded import EmbeddedBroker
from streams.testing import TopologyTestDriver


def topology():
    t = st.Topology("ws")
    (
        t.source("tx")
        .key_by("card")
        .aggregate("per-card", n=agg.count(), total=agg.sum("eur"))
        .to("totals")
    )
    return t


def load(b, n, start=0, partitions=4):
    for i in range(start, start + n):
        b.append(
            "tx",
            i % partitions,
            None,
            st.serde.JSON.serialize({"card": f"c{i % 23}", "eur": i % 100}),
            i,
        )


def final_per_key(b, topic="totals"):
    out = {}
    for p in range(b.partition_count(topic)):
        for m in b.fetch(TopicPartition(topic, p), 0):
            out[m.key.decode()] = st.serde.JSON.deserialize(m.value)
    return out


def run(topo, b, **cfg):
    w = st.Worker(topo, b, st.Config(**cfg))
    asyncio.run(w.run(until_idle=True))
    return w


@pytest.mark.parametrize("backend", ["rocksdb", "memory"])
def test_restart_restores_and_continues(tmp_path, backend):
    b = EmbeddedBroker(default_partitions=4)
    b.create_topic("tx", 4)
    b.create_topic("totals", 4)
    load(b, 2000)
    w1 = run(topology(), b, state_backend=backend, state_dir=str(tmp_path), max_poll_records=300)
    assert w1.restored_records == 0
    changelog_records = sum(
        b.end_offset(TopicPartition("ws-per-card-changelog", p)) for p in range(4)
    )
    load(b, 1000, 2000)
    w2 = run(topology(), b, state_backend=backend, state_dir=str(tmp_path), max_poll_records=300)
    # rocksdb kept its local copy (nothing to replay); memory rebuilt from the changelog
    assert w2.restored_records == (0 if backend == "rocksdb" else changelog_records)

    d = TopologyTestDriver(topology(), partitions=4)
    for i in range(3000):
        d.pipe("tx", {"card": f"c{i % 23}", "eur": i % 100}, timestamp=i)
    want = {k: v for k, v in d.store("per-card").items()}
    assert final_per_key(b) == want
    assert want["c0"]["n"] == len(range(0, 3000, 23))


def test_exactly_once_with_state_on_embedded(tmp_path):
    b = EmbeddedBroker(default_partitions=2)
    b.create_topic("tx", 2)
    b.create_topic("totals", 2)
    load(b, 500, partitions=2)
    run(topology(), b, processing_guarantee="exactly_once", state_dir=str(tmp_path))
    totals = final_per_key(b)
    assert sum(v["n"] for v in totals.values()) == 500


def test_windowed_aggregation_on_the_worker_matches_the_driver(tmp_path):
    from streams import windows

    def topo():
        t = st.Topology("wwin")
        (
            t.source("ev", timestamp="ts")
            .key_by("user")
            .window("per-10s", windows.hopping(ms=10_000, advance=5_000))
            .aggregate(n=agg.count(), total=agg.sum("x"))
            .to("out")
        )
        return t

    events = [{"user": f"u{i % 5}", "x": i, "ts": i * 137} for i in range(3000)]
    b = EmbeddedBroker(default_partitions=3)
    b.create_topic("ev", 3)
    b.create_topic("out", 3)
    for i, e in enumerate(events):  # in event-time order: nothing is late
        b.append("ev", i % 3, None, st.serde.JSON.serialize(e), e["ts"])
    run(topo(), b, state_dir=str(tmp_path), max_poll_records=200)
    got = sorted(
        (
            m.key.decode(),
            st.serde.JSON.deserialize(m.value)["window_start"],
            st.serde.JSON.deserialize(m.value)["n"],
        )
        for p in range(3)
        for m in b.fetch(TopicPartition("out", p), 0)
    )

    d = TopologyTestDriver(topo(), partitions=3)
    for i, e in enumerate(events):
        d.broker.append("ev", i % 3, None, st.serde.JSON.serialize(e), e["ts"])
    d._run()
    want = sorted((r.key, r.value["window_start"], r.value["n"]) for r in d.read("out"))
    assert got == want and len(want) > 100


def test_a_commit_that_fails_without_fencing_restarts_the_task_from_its_last_commit(
    tmp_path, monkeypatch
):
    """E.g. the broker went away mid-commit: the task is closed, the worker rejoins, and the
    task comes back from its last commit; outputs stay exactly once (read_committed)."""
    from streams.core.errors import BrokerError
    from streams.runtime.embedded import EmbeddedProducer

    b = EmbeddedBroker(default_partitions=2)
    b.create_topic("tx", 2)
    b.create_topic("totals", 2)
    load(b, 600, partitions=2)
    real = EmbeddedProducer.commit_transaction
    failures = []

    async def flaky(self, offsets, group_id, metadata=None):
        if offsets and len(failures) < 2 and sum(offsets.values()) > 100:
            failures.append(dict(offsets))
            await self.abort()  # what a lost commit amounts to: nothing of it is visible
            raise BrokerError("kafka: commit transaction failed: KafkaConnectionError")
        return await real(self, offsets, group_id, metadata)

    monkeypatch.setattr(EmbeddedProducer, "commit_transaction", flaky)
    w = run(
        topology(),
        b,
        processing_guarantee="exactly_once",
        state_dir=str(tmp_path),
        max_poll_records=50,
        commit_interval_ms=1,
    )
    assert len(failures) == 2 and w.rebalances >= 2  # a failure makes the worker rejoin
    totals = final_per_key(b)
    assert sum(v["n"] for v in totals.values()) == 600  # nothing lost, nothing twice
    for p in range(2):
        seen: dict[str, int] = {}
        for m in b.fetch(TopicPartition("totals", p), 0):
            n = st.serde.JSON.deserialize(m.value)["n"]
            assert n > seen.get(m.key.decode(), 0)  # never a replayed (duplicate) update
            seen[m.key.decode()] = n


def test_a_commit_refused_after_a_rebalance_rejoins_instead_of_failing(tmp_path, monkeypatch):
    """At-least-once: the group rebalanced before an offset commit (Kafka's CommitFailedError).
    The worker closes the tasks and rejoins; their input is re-read from the committed offsets,
    so nothing is lost (a loaded CI chaos run ended a worker on this before)."""
    from streams.core.errors import TaskMigratedError
    from streams.runtime.embedded import EmbeddedConsumer

    b = EmbeddedBroker(default_partitions=2)
    b.create_topic("tx", 2)
    b.create_topic("totals", 2)
    load(b, 600, partitions=2)
    real = EmbeddedConsumer.commit
    refused = []

    async def flaky(self, offsets, metadata=None):
        if len(refused) < 2 and sum(offsets.values()) > 100:
            refused.append(dict(offsets))
            raise TaskMigratedError("kafka: offset commit refused: CommitFailedError")
        return await real(self, offsets, metadata)

    monkeypatch.setattr(EmbeddedConsumer, "commit", flaky)
    w = run(topology(), b, state_dir=str(tmp_path), max_poll_records=50, commit_interval_ms=1)
    assert len(refused) == 2 and w.rebalances >= 2  # each refusal made the worker rejoin
    totals = final_per_key(b)
    # at-least-once: replayed records may count twice, none is lost
    assert len(totals) == 23 and sum(v["n"] for v in totals.values()) >= 600
    committed = {p: b.committed_offset("ws", TopicPartition("tx", p)) for p in range(2)}
    assert committed == {0: 300, 1: 300}
