"""``KafkaBroker`` (streams.runtime.kafka) against a real Kafka broker: the Broker protocol's
semantics (topics, batching producer, co-partitioned groups, offsets, transactions, fencing) and
the worker end to end, compared with ``TopologyTestDriver``."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped]
from aiokafka.structs import TopicPartition as AkTP  # type: ignore[import-untyped]

import streams as st
from streams.core.errors import BrokerError
from streams.runtime.broker import Message, OutRecord, TopicPartition, TopicSpec
from streams.runtime.kafka import KafkaBroker, KafkaConsumer
from streams.runtime.worker import Worker
from streams.testing import TopologyTestDriver

pytestmark = pytest.mark.kafka

TopicFactory = Callable[..., str]
# Record timestamps near "now": Kafka's time-based retention (7 days by default, checked every
# minute by the test broker) deletes segments of old-timestamped records, even mid-test.
NOW = int(time.time() * 1000)
Row = tuple[bytes | None, bytes | None, int, tuple[tuple[str, bytes], ...]]


def _uid() -> str:
    return uuid.uuid4().hex[:10]


def _rows(msgs: Sequence[Any]) -> list[Row]:
    return [(m.key, m.value, m.timestamp, tuple(m.headers)) for m in msgs]


async def _read_all(
    broker: KafkaBroker,
    topic: str,
    partitions: int,
    want: int,
    *,
    read_committed: bool = True,
    settle_ms: int = 500,
    timeout_s: float = 60.0,
) -> dict[int, list[Any]]:
    """Every record of ``topic`` per partition (manual assignment, no group), in fetch order."""
    c = broker.consumer(None, read_committed=read_committed)
    c.assign([TopicPartition(topic, p) for p in range(partitions)])
    out: dict[int, list[Any]] = {p: [] for p in range(partitions)}
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        got = 0
        while got < want and loop.time() < deadline:
            for tp, msgs in (await c.getmany(timeout_ms=500, max_records=20_000)).items():
                out[tp.partition].extend(msgs)
                got += len(msgs)
        for tp, msgs in (await c.getmany(timeout_ms=settle_ms)).items():
            out[tp.partition].extend(msgs)
    finally:
        await c.close()
    return out


class RecordingListener:
    def __init__(self) -> None:
        self.revoked: list[set[TopicPartition]] = []
        self.assigned: list[set[TopicPartition]] = []

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.revoked.append(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.assigned.append(set(assigned))


# -- topics ---------------------------------------------------------------------------------------
async def test_create_topics_idempotent_and_mismatch(kafka_bootstrap: str) -> None:
    broker = KafkaBroker(kafka_bootstrap)
    a, b = f"ct-a-{_uid()}", f"ct-b-{_uid()}"
    try:
        assert await broker.partitions(a) is None
        await broker.create_topics(
            [TopicSpec(a, 3), TopicSpec(b, 2, {"cleanup.policy": "compact"})]
        )
        assert await broker.partitions(a) == 3
        assert await broker.partitions(b) == 2
        await broker.create_topics([TopicSpec(a, 3), TopicSpec(b, 2)])  # idempotent
        with pytest.raises(BrokerError) as e:
            await broker.create_topics([TopicSpec(a, 5)])
        assert a in str(e.value) and "3" in str(e.value) and "5" in str(e.value)
        assert await broker.partitions(a) == 3
    finally:
        await broker.close()


async def test_partitions_of_unknown_topic_is_none_and_not_created(kafka_bootstrap: str) -> None:
    broker = KafkaBroker(kafka_bootstrap)
    name = f"nope-{_uid()}"
    try:
        assert await broker.partitions(name) is None
        assert await broker.partitions(name) is None
    finally:
        await broker.close()


def test_repr_hides_the_password() -> None:
    broker = KafkaBroker(
        "h:9092",
        security_protocol="SASL_PLAINTEXT",
        sasl_plain_username="u",
        sasl_plain_password="s3cr3t-pw",
    )
    assert "s3cr3t-pw" not in repr(broker)
    assert "h:9092" in repr(broker) and broker.address == "h:9092"
    assert "s3cr3t-pw" not in repr(broker.producer()) + repr(broker.consumer("g"))


# -- produce / consume ----------------------------------------------------------------------------
async def test_send_batch_flush_50k_exact_content_and_order(
    kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    topic = kafka_topic_factory(partitions=4)
    broker = KafkaBroker(kafka_bootstrap)
    n = 50_000
    expected: dict[int, list[Row]] = {p: [] for p in range(4)}
    producer = broker.producer()
    try:
        for start in range(0, n, 1000):  # like a task: batches of records per partition
            per: dict[int, list[OutRecord]] = {p: [] for p in range(4)}
            for i in range(start, start + 1000):
                p = i % 4
                headers: tuple[tuple[str, bytes], ...] = (("h", b"%d" % i),) if i % 7 == 0 else ()
                key = None if i % 11 == 0 else b"k%d" % i
                rec = (key, b"v%d" % i, NOW + i, headers)
                per[p].append(rec)
                expected[p].append(rec)
            for p, recs in per.items():
                producer.send_batch(topic, p, recs)
        await producer.flush()
    finally:
        await producer.close()
    got = await _read_all(broker, topic, 4, n, read_committed=False)
    await broker.close()
    for p in range(4):
        assert _rows(got[p]) == expected[p]
        assert [m.offset for m in got[p]] == list(range(len(expected[p])))


async def test_flush_reports_delivery_failure_as_broker_error(
    kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    topic = kafka_topic_factory(partitions=1)
    broker = KafkaBroker(kafka_bootstrap)
    producer = broker.producer()
    try:  # larger than the broker's message.max.bytes (1 MiB): the broker rejects the batch
        producer.send_batch(topic, 0, [(None, b"x" * 2_000_000, NOW, ())])
        with pytest.raises(BrokerError, match="MessageSizeTooLarge"):
            await asyncio.wait_for(producer.flush(), 60)
        producer.send_batch(topic, 0, [(None, b"small", NOW, ())])
        await producer.flush()  # the error was reported once; the producer goes on
    finally:
        await producer.close()
    got = await _read_all(broker, topic, 1, 1, read_committed=False)
    await broker.close()
    assert [m.value for m in got[0]] == [b"small"]


# -- consumer groups ------------------------------------------------------------------------------
def _last(calls: list[set[TopicPartition]]) -> set[TopicPartition] | None:
    return calls[-1] if calls else None


async def _poll_until(
    consumers: Sequence[KafkaConsumer], done: Callable[[], bool], timeout_s: float = 60.0
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not done():
        assert loop.time() < deadline, "timed out waiting for the group to settle"
        await asyncio.gather(*(c.getmany(timeout_ms=200) for c in consumers))


async def test_group_assigns_copartitioned_partitions_together(
    kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    a, b = kafka_topic_factory(partitions=4), kafka_topic_factory(partitions=4)
    every = {TopicPartition(t, p) for t in (a, b) for p in range(4)}
    broker = KafkaBroker(kafka_bootstrap)
    group = f"grp-{_uid()}"
    c1, c2 = broker.consumer(group), broker.consumer(group)
    l1, l2 = RecordingListener(), RecordingListener()
    try:
        await c1.subscribe([a, b], l1)
        # aiokafka publishes an assignment before it awaits the listener: wait for both
        await _poll_until([c1], lambda: c1.assignment() == every == _last(l1.assigned))

        await c2.subscribe([a, b], l2)
        await _poll_until(
            [c1, c2],
            lambda: (
                bool(c1.assignment())
                and bool(c2.assignment())
                and c1.assignment() | c2.assignment() == every
                and _last(l1.assigned) == c1.assignment()
                and _last(l2.assigned) == c2.assignment()
            ),
        )
        s1, s2 = c1.assignment(), c2.assignment()
        assert not s1 & s2
        for s in (s1, s2):  # partition numbers as whole groups: a-p and b-p on one member
            assert {p for t, p in s if t == a} == {p for t, p in s if t == b}
            assert len({p for _, p in s}) == 2
        assert l1.revoked and l1.revoked[-1] == every
        assert l1.assigned[-1] == s1 and l2.assigned[-1] == s2

        await c2.close()
        await _poll_until([c1], lambda: c1.assignment() == every == _last(l1.assigned))
    finally:
        await c1.close()
        await c2.close()
        await broker.close()


async def test_subscription_picks_up_a_topic_created_after_subscribe(
    kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    """aiokafka alone would wait metadata_max_age_ms (5 min) before seeing the new topic."""
    a = kafka_topic_factory(partitions=2)
    late = f"late-{_uid()}"
    broker = KafkaBroker(kafka_bootstrap)
    c = broker.consumer(f"late-{_uid()}")
    try:
        await c.subscribe([a, late], RecordingListener())
        await _poll_until([c], lambda: {tp.topic for tp in c.assignment()} == {a}, 30)
        kafka_topic_factory(partitions=2, name=late)
        want = {TopicPartition(t, p) for t in (a, late) for p in range(2)}
        await _poll_until([c], lambda: c.assignment() == want, 30)
    finally:
        await c.close()
        await broker.close()


# -- offsets --------------------------------------------------------------------------------------
async def test_commit_committed_seek_position_end_offsets(
    kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    topic = kafka_topic_factory(partitions=1)
    tp = TopicPartition(topic, 0)
    broker = KafkaBroker(kafka_bootstrap)
    group = f"off-{_uid()}"
    producer = broker.producer()
    producer.send_batch(topic, 0, [(None, b"%d" % i, NOW + i, ()) for i in range(100)])
    await producer.flush()
    await producer.close()

    c = broker.consumer(group)
    try:
        c.assign([tp])
        assert c.assignment() == {tp}
        assert await c.committed(tp) is None
        got: list[Message] = []
        while len(got) < 100:
            got.extend((await c.getmany(timeout_ms=500)).get(tp, []))
        assert [m.value for m in got] == [b"%d" % i for i in range(100)]
        assert c.position(tp) == 100
        assert await c.end_offsets([tp]) == {tp: 100}

        await c.commit({tp: 60})
        assert await c.committed(tp) == 60
        assert await c.committed_metadata([tp]) == {}
        await c.commit({tp: 60}, {tp: 'wm1:{"m":123}'})  # event time travels with offsets
        assert await c.committed_metadata([tp]) == {tp: 'wm1:{"m":123}'}

        c.seek(tp, 10)
        assert c.position(tp) == 10
        first = (await c.getmany(timeout_ms=2000))[tp]
        assert first[0].offset == 10 and first[0].value == b"10"

        c.pause([tp])
        c.seek(tp, 0)
        assert await c.getmany(timeout_ms=300) == {}
        c.resume([tp])
        assert (await c.getmany(timeout_ms=2000))[tp][0].offset == 0
    finally:
        await c.close()

    c2 = broker.consumer(group)  # a new member of the group resumes from the committed offset
    try:
        c2.assign([tp])
        assert await c2.committed(tp) == 60
        assert await c2.committed_metadata([tp]) == {tp: 'wm1:{"m":123}'}
        first = (await c2.getmany(timeout_ms=5000))[tp]
        assert first[0].offset == 60
    finally:
        await c2.close()
        await broker.close()


# -- transactions ---------------------------------------------------------------------------------
async def test_transactions_commit_abort_and_offsets(
    kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    out = kafka_topic_factory(partitions=2)
    inp = kafka_topic_factory(partitions=1)
    broker = KafkaBroker(kafka_bootstrap)
    group = f"txg-{_uid()}"
    p = broker.producer(transactional_id=f"tx-{_uid()}")
    try:
        with pytest.raises(BrokerError):
            p.send_batch(out, 0, [(None, b"outside", 0, ())])

        await p.begin()
        p.send_batch(out, 0, [(None, b"c%d" % i, NOW + i, ()) for i in range(10)])
        p.send_batch(out, 1, [(b"k", b"c-one", NOW + 5, (("h", b"1"),))])
        tp_in = TopicPartition(inp, 0)
        await p.commit_transaction({tp_in: 42}, group, {tp_in: "wm1:{}"})

        await p.begin()
        p.send_batch(out, 0, [(None, b"aborted%d" % i, NOW + i, ()) for i in range(5)])
        await p.flush()  # the aborted records really are in the log
        await p.abort()

        await p.begin()
        p.send_batch(out, 0, [(None, b"late%d" % i, NOW + i, ()) for i in range(3)])
        await p.commit_transaction({}, group)
    finally:
        await p.close()

    committed = await _read_all(broker, out, 2, 14)
    assert [m.value for m in committed[0]] == (
        [b"c%d" % i for i in range(10)] + [b"late%d" % i for i in range(3)]
    )
    assert _rows(committed[1]) == [(b"k", b"c-one", NOW + 5, (("h", b"1"),))]
    uncommitted = await _read_all(broker, out, 2, 19, read_committed=False)
    assert sum(len(v) for v in uncommitted.values()) == 19

    c = broker.consumer(group)
    try:
        assert await c.committed(TopicPartition(inp, 0)) == 42
        assert await c.committed_metadata([TopicPartition(inp, 0)]) == {tp_in: "wm1:{}"}
    finally:
        await c.close()
        await broker.close()


async def test_newer_transactional_producer_fences_the_old(
    kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    topic = kafka_topic_factory(partitions=1)
    broker = KafkaBroker(kafka_bootstrap)
    tid = f"fence-{_uid()}"
    old, new = broker.producer(transactional_id=tid), broker.producer(transactional_id=tid)
    try:
        await old.begin()
        old.send_batch(topic, 0, [(None, b"zombie", NOW, ())])
        await new.begin()  # InitProducerId bumps the epoch: the old producer is fenced
        new.send_batch(topic, 0, [(None, b"new", NOW, ())])
        with pytest.raises(BrokerError, match="fenced"):
            await old.commit_transaction({}, "g")
        await new.commit_transaction({}, "g")
    finally:
        await old.close()
        await new.close()
    got = await _read_all(broker, topic, 1, 1)
    await broker.close()
    assert [m.value for m in got[0]] == [b"new"]


# -- the library end to end -----------------------------------------------------------------------
def _input_rows(n: int) -> list[tuple[str, dict[str, Any], int]]:
    return [(f"k{i % 37}", {"n": i, "g": f"g{i % 5}"}, NOW + i) for i in range(n)]


async def _copy_driver_input(
    broker: KafkaBroker, driver: TopologyTestDriver, topic: str, partitions: int
) -> int:
    """Produce exactly what the driver's embedded broker holds for ``topic`` (same partitions)."""
    producer = broker.producer()
    total = 0
    try:
        for p in range(partitions):
            msgs = driver.broker.fetch(TopicPartition(topic, p), 0)
            producer.send_batch(topic, p, [(m.key, m.value, m.timestamp, m.headers) for m in msgs])
            total += len(msgs)
        await producer.flush()
    finally:
        await producer.close()
    return total


def _driver_output(driver: TopologyTestDriver, topic: str, partitions: int) -> dict[int, list[Row]]:
    return {p: _rows(driver.broker.fetch(TopicPartition(topic, p), 0)) for p in range(partitions)}


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
async def test_worker_on_kafka_matches_test_driver(
    kafka_bootstrap: str, kafka_topic_factory: TopicFactory, guarantee: str
) -> None:
    inp, out = kafka_topic_factory(partitions=4), kafka_topic_factory(partitions=4)
    topo = st.Topology(f"e2e-{_uid()}")
    topo.source(inp).filter(st.col("n") % 3 != 0).map_values(st.col("n") * 2).to(out)
    driver = TopologyTestDriver(topo, partitions=4)
    driver.pipe_many(inp, _input_rows(20_000))
    want = _driver_output(driver, out, 4)
    n_out = sum(len(v) for v in want.values())
    assert n_out > 10_000

    broker = KafkaBroker(kafka_bootstrap)
    assert await _copy_driver_input(broker, driver, inp, 4) == 20_000
    config = st.Config(processing_guarantee=guarantee)  # type: ignore[arg-type]
    worker = Worker(topo, broker, config)
    await asyncio.wait_for(worker.run(until_idle=True), 120)
    assert worker.processed == 20_000

    got = await _read_all(broker, out, 4, n_out, read_committed=True)
    assert {p: _rows(v) for p, v in got.items()} == want  # same records, same order per partition

    c = broker.consumer(topo.app_id)
    try:
        for p in range(4):
            tp = TopicPartition(inp, p)
            assert await c.committed(tp) == len(driver.broker.fetch(tp, 0))
    finally:
        await c.close()
    if guarantee == "exactly_once":  # nothing aborted or pending: uncommitted view is the same
        raw = await _read_all(broker, out, 4, n_out, read_committed=False)
        assert {p: _rows(v) for p, v in raw.items()} == want
    await broker.close()


async def test_worker_exactly_once_with_repartition_topic(
    kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    """Two sub-topologies: the worker reads its own transactional output back (read_committed)."""
    inp, out = kafka_topic_factory(partitions=4), kafka_topic_factory(partitions=4)
    topo = st.Topology(f"e2e-rp-{_uid()}")
    (
        topo.source(inp)
        .filter(st.col("n") % 3 != 0)
        .key_by(st.col("g"))
        .repartition("by-g")
        .map_values(st.col("n") * 2)
        .to(out)
    )
    driver = TopologyTestDriver(topo, partitions=4)
    driver.pipe_many(inp, _input_rows(5_000))
    want = _driver_output(driver, out, 4)
    n_out = sum(len(v) for v in want.values())

    broker = KafkaBroker(kafka_bootstrap)
    await _copy_driver_input(broker, driver, inp, 4)
    config = st.Config(processing_guarantee="exactly_once", repartition_purge_interval_ms=1)
    worker = Worker(topo, broker, config)
    await asyncio.wait_for(worker.run(until_idle=True), 120)
    rep = f"{topo.app_id}-by-g-repartition"
    assert await broker.partitions(rep) == 4
    # what the downstream tasks committed past was deleted from the repartition topic
    reader = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap)
    await reader.start()
    try:
        starts = await reader.beginning_offsets([AkTP(rep, p) for p in range(4)])
    finally:
        await reader.stop()
    assert sum(starts.values()) > 0, starts

    got = await _read_all(broker, out, 4, n_out, read_committed=True)
    # Upstream tasks interleave differently on Kafka: compare per partition, order aside.
    assert {p: sorted(_rows(v), key=repr) for p, v in got.items()} == {
        p: sorted(v, key=repr) for p, v in want.items()
    }
    await broker.close()


# -- throughput measurement (not a test) ---------------------------------------------------------
async def _measure(
    bootstrap: str, n: int, partitions: int, batch_bytes: int, eager: int
) -> tuple[float, float]:
    """Records/s through ``send_batch``+``flush`` (1000-record calls, round-robin partitions,
    yielding to the loop every 10 calls as a worker would) and through ``getmany``."""
    broker = KafkaBroker(bootstrap, producer_batch_bytes=batch_bytes)
    topic = f"bench-{_uid()}"
    await broker.create_topics([TopicSpec(topic, partitions)])
    now = int(time.time() * 1000)
    chunk = 1000
    recs: list[list[OutRecord]] = [
        [
            (b"key-%07d" % i, b'{"n":%d,"name":"x%d"}' % (i, i), now + i, ())
            for i in range(j, j + chunk)
        ]
        for j in range(0, n, chunk)
    ]
    producer = broker.producer()
    producer.eager_records = eager
    await producer._start()  # connect before timing
    t0 = time.perf_counter()
    for j, batch in enumerate(recs):
        producer.send_batch(topic, j % partitions, batch)
        if j % 10 == 9:
            await asyncio.sleep(0)
    await asyncio.wait_for(producer.flush(), 60)
    t_prod = time.perf_counter() - t0
    await producer.close()

    c = broker.consumer(None, read_committed=True)
    c.assign([TopicPartition(topic, p) for p in range(partitions)])
    await c.getmany(timeout_ms=0)  # connect before timing
    got = 0
    t0 = time.perf_counter()
    while got < n:
        for msgs in (await c.getmany(timeout_ms=1000, max_records=10_000)).values():
            got += len(msgs)
        if time.perf_counter() - t0 > 60:
            raise RuntimeError(f"consumed {got} of {n} in 60 s")
    t_cons = time.perf_counter() - t0
    await c.close()
    await broker.close()
    return n / t_prod, n / t_cons


if __name__ == "__main__":
    # python -m tests.integration.test_kafka_transport HOST:PORT [N] [PARTITIONS] [REPEATS]
    import statistics
    import sys

    _args = sys.argv[1:]
    _n = int(_args[1]) if len(_args) > 1 else 500_000
    _parts = int(_args[2]) if len(_args) > 2 else 4
    _reps = int(_args[3]) if len(_args) > 3 else 5
    for _bb, _eager in [(16384, 4096), (131072, 4096), (524288, 4096), (524288, 1 << 62)]:
        _res = [asyncio.run(_measure(_args[0], _n, _parts, _bb, _eager)) for _ in range(_reps)]
        print(
            f"n={_n} partitions={_parts} batch_bytes={_bb} eager_records={_eager}: "
            f"produce median {statistics.median(r[0] for r in _res):,.0f} rec/s, "
            f"consume median {statistics.median(r[1] for r in _res):,.0f} rec/s "
            f"({_reps} runs)",
            flush=True,
        )


async def test_delete_records_moves_the_log_start(
    kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    topic = kafka_topic_factory(partitions=1)
    tp = TopicPartition(topic, 0)
    broker = KafkaBroker(kafka_bootstrap)
    producer = broker.producer()
    producer.send_batch(topic, 0, [(None, b"%d" % i, NOW + i, ()) for i in range(10)])
    await producer.flush()
    await producer.close()
    await broker.delete_records({tp: 6})
    c = broker.consumer(None)
    try:
        c.assign([tp])  # from the earliest offset: the new log start
        got: list[Message] = []
        while len(got) < 4:
            got.extend((await c.getmany(timeout_ms=500)).get(tp, []))
        assert [(m.offset, m.value) for m in got] == [(i, b"%d" % i) for i in range(6, 10)]
    finally:
        await c.close()
        await broker.close()
