import asyncio

import pytest

from streams import BrokerError
from streams.runtime.broker import TopicPartition, TopicSpec
from streams.runtime.embedded import EmbeddedBroker


class Listener:
    def __init__(self):
        self.assigned: set = set()
        self.events: list = []

    async def on_partitions_revoked(self, revoked):
        self.events.append(("revoked", frozenset(revoked)))
        self.assigned -= revoked

    async def on_partitions_assigned(self, assigned):
        self.events.append(("assigned", frozenset(assigned)))
        self.assigned |= assigned


def test_offsets_timestamps_headers():
    b = EmbeddedBroker()
    b.create_topic("t", 2)
    assert b.append("t", 1, b"k", b"v", 10, [("h", b"1")]) == 0
    assert b.append("t", 1, None, None, 11) == 1
    msgs = b.fetch(TopicPartition("t", 1), 0)
    assert [(m.key, m.value, m.timestamp, m.headers, m.offset) for m in msgs] == [
        (b"k", b"v", 10, (("h", b"1"),), 0),
        (None, None, 11, (), 1),
    ]
    assert b.end_offset(TopicPartition("t", 1)) == 2
    assert b.fetch(TopicPartition("t", 0), 0) == []


def test_create_topic_mismatch_and_bad_partition():
    b = EmbeddedBroker(auto_create=False)
    asyncio.run(b.create_topics([TopicSpec("t", 3)]))
    asyncio.run(b.create_topics([TopicSpec("t", 3)]))  # idempotent
    with pytest.raises(BrokerError, match="exists with 3 partitions, not 4"):
        b.create_topic("t", 4)
    with pytest.raises(BrokerError, match="no partition 3"):
        b.append("t", 3, None, b"x")
    with pytest.raises(BrokerError, match="unknown topic"):
        b.append("nope", 0, None, b"x")


async def test_group_splits_partition_numbers_and_rebalances():
    b = EmbeddedBroker()
    b.create_topic("a", 4)
    b.create_topic("b", 4)
    c1, c2 = b.consumer("g"), b.consumer("g")
    l1, l2 = Listener(), Listener()
    await c1.subscribe(["a", "b"], l1)
    await c1.getmany(timeout_ms=0)
    assert len(l1.assigned) == 8
    await c2.subscribe(["a", "b"], l2)
    await c1.getmany(timeout_ms=0)
    await c2.getmany(timeout_ms=0)
    assert len(l1.assigned) == len(l2.assigned) == 4
    for ls in (l1, l2):  # co-partitioned: a-p and b-p on the same member
        assert {tp.partition for tp in ls.assigned if tp.topic == "a"} == {
            tp.partition for tp in ls.assigned if tp.topic == "b"
        }
    await c2.close()
    await c1.getmany(timeout_ms=0)
    assert len(l1.assigned) == 8
    assert l1.events[1][0] == "revoked"


async def test_consumer_resumes_from_committed_offset():
    b = EmbeddedBroker()
    b.create_topic("t", 1)
    for i in range(5):
        b.append("t", 0, None, str(i).encode(), i)
    c = b.consumer("g")
    await c.subscribe(["t"], Listener())
    got = await c.getmany(timeout_ms=0, max_records=3)
    tp = TopicPartition("t", 0)
    assert [m[1] for m in got[tp]] == [b"0", b"1", b"2"]
    await c.commit({tp: 3})
    await c.close()
    c2 = b.consumer("g")
    await c2.subscribe(["t"], Listener())
    got = await c2.getmany(timeout_ms=0)
    assert [m[1] for m in got[tp]] == [b"3", b"4"]
    assert await c2.committed(tp) == 3


async def test_getmany_waits_for_data():
    b = EmbeddedBroker()
    b.create_topic("t", 1)
    c = b.consumer("g")
    await c.subscribe(["t"], Listener())
    assert await c.getmany(timeout_ms=10) == {}

    async def later():
        await asyncio.sleep(0.01)
        b.append("t", 0, None, b"x", 0)

    task = asyncio.create_task(later())
    got = await c.getmany(timeout_ms=2000)
    await task
    assert [m[1] for m in got[TopicPartition("t", 0)]] == [b"x"]


async def test_pause_resume_and_seek():
    b = EmbeddedBroker()
    b.create_topic("t", 1)
    b.append("t", 0, None, b"x", 0)
    tp = TopicPartition("t", 0)
    c = b.consumer(None)
    c.assign([tp])
    c.pause([tp])
    assert await c.getmany(timeout_ms=0) == {}
    c.resume([tp])
    assert len((await c.getmany(timeout_ms=0))[tp]) == 1  # records are Message-shaped tuples
    c.seek(tp, 0)
    assert c.position(tp) == 0


async def test_transactions_commit_abort_and_fencing():
    b = EmbeddedBroker()
    b.create_topic("t", 1)
    tp = TopicPartition("t", 0)
    p = b.producer(transactional_id="tx")
    with pytest.raises(BrokerError, match="outside a transaction"):
        p.send_batch("t", 0, [(None, b"x", 0, ())])
    await p.begin()
    p.send_batch("t", 0, [(None, b"a", 0, ())])
    assert b.fetch(tp, 0) == []  # invisible until commit
    await p.commit_transaction({TopicPartition("in", 0): 5}, "g")
    assert [m.value for m in b.fetch(tp, 0)] == [b"a"]
    assert b.committed_offset("g", TopicPartition("in", 0)) == 5
    await p.begin()
    p.send_batch("t", 0, [(None, b"b", 0, ())])
    await p.abort()
    assert [m.value for m in b.fetch(tp, 0)] == [b"a"]
    await p.begin()
    newer = b.producer(transactional_id="tx")
    with pytest.raises(BrokerError, match="fenced"):
        await p.commit_transaction({}, "g")
    await newer.begin()
    await newer.commit_transaction({}, "g")


def test_event_survives_separate_event_loops():
    b = EmbeddedBroker()
    b.create_topic("t", 1)

    async def once():
        c = b.consumer("g")
        await c.subscribe(["t"], Listener())
        await c.getmany(timeout_ms=5)
        await c.close()

    asyncio.run(once())
    asyncio.run(once())


async def test_delete_records_moves_the_log_start():
    b = EmbeddedBroker()
    b.create_topic("t", 1)
    tp = TopicPartition("t", 0)
    for i in range(5):
        b.append("t", 0, None, b"%d" % i, i)
    await b.delete_records({tp: 3})
    assert b.start_offset(tp) == 3 and b.end_offset(tp) == 5
    # a fetch from below the log start starts at it; offsets keep their numbers
    assert [(m.offset, m.value) for m in b.fetch(tp, 0)] == [(3, b"3"), (4, b"4")]
    await b.delete_records({tp: 2})  # already deleted: no change
    assert b.start_offset(tp) == 3
    assert b.append("t", 0, None, b"5", 5) == 5
    with pytest.raises(BrokerError, match="past the end"):
        await b.delete_records({tp: 7})


def test_deleted_records_leave_the_log():
    """Deleting records drops them from memory (the log holds only what is left), and
    offsets, fetches and appends keep their numbers."""
    b = EmbeddedBroker()
    b.create_topic("t", 1)
    tp = TopicPartition("t", 0)
    b.append_batch("t", 0, [(None, b"%d" % i, i, ()) for i in range(1000)])
    b.delete_records_before(tp, 990)
    assert b.held("t") == 10 and len(b.topics["t"].logs[0]) == 10
    assert b.end_offset(tp) == 1000 and b.start_offset(tp) == 990
    assert [m.offset for m in b.fetch(tp, 995)] == [995, 996, 997, 998, 999]
    assert [m.offset for m in b.fetch(tp, 0, 2)] == [990, 991]
    assert b.append("t", 0, None, b"x", 0) == 1000
    b.delete_records_before(tp, 1001)
    assert b.held("t") == 0 and b.fetch(tp, 0) == [] and b.end_offset(tp) == 1001


async def test_a_consumer_below_the_log_start_moves_to_it():
    """As Kafka's auto.offset.reset=earliest: a position in deleted records moves to the log
    start, so lag ends at 0 instead of waiting for records that are gone."""
    b = EmbeddedBroker()
    b.create_topic("t", 1)
    tp = TopicPartition("t", 0)
    b.append_batch("t", 0, [(None, b"v", i, ()) for i in range(5)])
    b.delete_records_before(tp, 5)
    c = b.consumer(None)
    c.assign([tp])
    assert await c.getmany(timeout_ms=0) == {}
    assert c.position(tp) == 5


async def test_taps_see_records_as_they_are_written():
    b = EmbeddedBroker()
    seen: list[tuple[int, int, bytes]] = []
    b.create_topic("out", 2)
    b.tap("out", lambda p, recs: seen.extend((p, r[4], r[1]) for r in recs))
    b.append("out", 1, None, b"a", 0)
    b.append_batch("out", 0, [(None, b"b", 0, ()), (None, b"c", 0, ())])
    assert seen == [(1, 0, b"a"), (0, 0, b"b"), (0, 1, b"c")]
    p = b.producer(transactional_id="tx")
    await p.begin()
    p.send_batch("out", 0, [(None, b"d", 0, ())])
    assert len(seen) == 3  # (not before the transaction commits)
    await p.commit_transaction({}, "g")
    assert seen[-1] == (0, 2, b"d")
