"""The one checkpoint sequence: its order under at-least-once and exactly-once, its failure
paths, and that the worker and the test driver both run it."""

import asyncio

import pytest

import streams as st
from streams.core.errors import BrokerError, TaskMigratedError
from streams.runtime import checkpoint
from streams.runtime.broker import TopicPartition
from streams.runtime.checkpoint import TaskCheckpoint, run_sync
from streams.runtime.embedded import EmbeddedBroker
from streams.testing import TopologyTestDriver


def counts(app="cp"):
    t = st.Topology(app)
    t.source("in").count("counts").to("out", value=st.serde.INT)
    return t


class RecordingIO:
    """A broker side that logs each step (and that the changelog is out before the flush)."""

    def __init__(self, driver, *, refuse=False, fail=()):
        self.driver = driver
        self.steps = []
        self.refuse = refuse
        self.fail = set(fail)
        self.offsets = {}
        self.abandoned = []

    def _changelog_end(self):
        b = self.driver.broker
        return sum(
            b.end_offset(TopicPartition(t, p))
            for t in b.topics
            if t.endswith("-changelog")
            for p in range(b.partition_count(t) or 0)
        )

    async def flush(self):
        self.steps.append(("flush", self._changelog_end()))

    async def commit_offsets(self, offsets, metadata):
        self.steps.append(("commit_offsets",))
        if self.refuse:
            raise TaskMigratedError("rebalanced")
        self.offsets.update(offsets)

    async def commit_transaction(self, task, offsets, metadata):
        self.steps.append(("commit_transaction", str(task.id), dict(offsets)))
        if str(task.id) in self.fail:
            raise BrokerError("broker went away")

    async def begin(self, task):
        self.steps.append(("begin", str(task.id)))

    async def end_offsets(self, tps):
        self.steps.append(("end_offsets",))
        return {tp: self.driver.broker.end_offset(tp) for tp in tps}

    async def abandon(self, tasks, err):
        self.steps.append(("abandon", sorted(str(t.id) for t in tasks), type(err).__name__))


@pytest.fixture
def recorded(monkeypatch):
    """Task-side steps, in the same log as the broker side's."""
    steps = []
    prepare, finish = TaskCheckpoint.prepare, TaskCheckpoint.finish

    def rec_prepare(self, ts, **kw):
        steps.append(("prepare", str(self.task.id)))
        return prepare(self, ts, **kw)

    def rec_finish(self, ends):
        steps.append(("finish", str(self.task.id)))
        finish(self, ends)

    monkeypatch.setattr(TaskCheckpoint, "prepare", rec_prepare)
    monkeypatch.setattr(TaskCheckpoint, "finish", rec_finish)
    return steps


def _driver(partitions=1):
    d = TopologyTestDriver(counts(), partitions=partitions, auto_commit=False)
    for key in ("a", "b", "c", "d"):
        d.pipe("in", {}, key=key)
    return d


def test_at_least_once_order(recorded):
    d = _driver()
    io = RecordingIO(d)
    io.steps = recorded
    tasks = list(d.tasks.values())
    done = run_sync(checkpoint.commit(tasks, io, exactly_once=False, timestamp_ms=0))
    assert done == tasks
    assert [s[0] for s in recorded] == [
        "prepare",
        "flush",
        "commit_offsets",
        "end_offsets",
        "finish",
    ]
    assert recorded[1][1] > 0  # the changelog records were produced before the flush
    assert io.offsets == tasks[0].positions
    assert tasks[0].checkpoint.uncommitted() == {}


def test_exactly_once_order_one_transaction_per_task(recorded):
    d = _driver(partitions=2)
    io = RecordingIO(d)
    io.steps = recorded
    tasks = list(d.tasks.values())
    asyncio.run(checkpoint.commit(tasks, io, exactly_once=True, timestamp_ms=0))
    names = [s[:2] for s in recorded]
    assert names == [
        ("prepare", "0_0"),
        ("prepare", "0_1"),
        ("commit_transaction", "0_0"),
        ("begin", "0_0"),
        ("commit_transaction", "0_1"),
        ("begin", "0_1"),
        ("end_offsets",),
        ("finish", "0_0"),
        ("finish", "0_1"),
    ]
    txns = [s for s in recorded if s[0] == "commit_transaction"]
    # each transaction carries only its own task's input offsets
    for step, task in zip(txns, tasks, strict=True):
        assert step[2] == task.positions


def test_a_refused_commit_abandons_every_task_and_writes_no_store(recorded):
    d = _driver()
    io = RecordingIO(d, refuse=True)
    io.steps = recorded
    tasks = list(d.tasks.values())
    assert run_sync(checkpoint.commit(tasks, io, exactly_once=False, timestamp_ms=0)) is None
    assert [s[0] for s in recorded] == ["prepare", "flush", "commit_offsets", "abandon"]
    assert recorded[-1][1:] == (["0_0"], "TaskMigratedError")
    assert tasks[0].checkpoint.committed == {}


def test_a_failed_transaction_abandons_only_its_task(recorded):
    d = _driver(partitions=2)
    io = RecordingIO(d, fail={"0_0"})
    io.steps = recorded
    tasks = list(d.tasks.values())
    done = asyncio.run(checkpoint.commit(tasks, io, exactly_once=True, timestamp_ms=0))
    assert [str(t.id) for t in done] == ["0_1"]
    assert ("abandon", ["0_0"], "BrokerError") in recorded
    assert [s for s in recorded if s[0] == "finish"] == [("finish", "0_1")]
    assert ("begin", "0_0") not in recorded


@pytest.fixture
def sequences(monkeypatch):
    """Which broker sides ran the shared commit and restore."""
    seen = []
    commit, restore = checkpoint.commit, checkpoint.restore

    async def rec_commit(tasks, io, *, exactly_once, timestamp_ms):
        seen.append(("commit", type(io).__name__, exactly_once))
        return await commit(tasks, io, exactly_once=exactly_once, timestamp_ms=timestamp_ms)

    async def rec_restore(task, reader, progress=None):
        seen.append(("restore", type(reader).__name__))
        return await restore(task, reader, progress)

    monkeypatch.setattr(checkpoint, "commit", rec_commit)
    monkeypatch.setattr(checkpoint, "restore", rec_restore)
    return seen


def test_the_driver_runs_the_shared_sequence(sequences):
    d = TopologyTestDriver(counts())
    d.pipe("in", {}, key="a")
    d.crash()
    d.restart()
    assert ("commit", "_DriverIO", False) in sequences
    assert ("restore", "EmbeddedChangelog") in sequences
    assert d.store("counts").get("a") == 1


@pytest.mark.parametrize("exactly_once", [False, True])
def test_the_worker_runs_the_shared_sequence(sequences, tmp_path, exactly_once):
    b = EmbeddedBroker()
    b.create_topic("in", 1)
    b.append("in", 0, b"a", b"{}", 0)
    guarantee = "exactly_once" if exactly_once else "at_least_once"
    config = st.Config(state_dir=str(tmp_path), processing_guarantee=guarantee)
    asyncio.run(st.Worker(counts(), b, config).run(until_idle=True))
    assert ("commit", "WorkerCommitIO", exactly_once) in sequences
    assert ("restore", "ConsumerChangelog") in sequences
