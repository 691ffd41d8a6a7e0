"""Checkpoints: the one commit and restore sequence of the worker and the test driver.

A commit (:func:`commit`) is, in this order, and the order is what makes it correct:

0. drain: the calls of async steps in flight end and their results are emitted
   (:meth:`~streams.runtime.task.Task.drain_async`);
1. prepare: each task flushes its stores' caches and its connector sinks prepare; the dirty
   entries go out as changelog records, with the outputs already produced
   (:meth:`TaskCheckpoint.prepare`);
2. commit the input offsets with their event-time metadata
   (:meth:`TaskCheckpoint.offset_metadata`):

   * at-least-once: flush the producer (changelogs and outputs durable), then send and flush
     the connector sources' positions (their changelog is their offsets), then commit the
     offsets of every task at once. A commit the group refused (it rebalanced) abandons every
     task: their stores are not written, whoever owns the partitions next restores them;
   * exactly-once: per task, commit its open transaction together with its offsets
     (``send_offsets_to_transaction``), then begin the next one. A task whose transaction
     failed is abandoned, the others go on;

3. finish: the tasks that committed write the same entries to their stores, with the
   changelog end offsets reached and the input offsets, and connector sinks publish
   (:meth:`TaskCheckpoint.finish`).

A crash between 2 and 3 loses nothing: the changelog has what the store missed. A crash
before 2 re-reads the input from the last commit (at-least-once: its outputs again).

A restore (:func:`restore`) replays each store's changelog from the offset its local copy
reached to the changelog's end (:func:`streams.runtime.restore.restore_stores`), then resumes
event time: from the offset metadata of the last commit (:meth:`TaskCheckpoint.restore_time`,
before the first batch) and from the watermark the stores kept
(:meth:`TaskCheckpoint.resume_time`).

The worker and the driver supply only the broker side, a :class:`CommitIO` (and a
:class:`~streams.runtime.restore.ChangelogReader`): the worker's producers and consumer, or
the driver's embedded broker and its committed-offsets table. The sequence is written once, as
coroutines: the worker awaits them; the driver's side never suspends, so :func:`run_sync` runs
them to the end at once, synchronously and deterministically, with no event loop (as Kafka's
TopologyTestDriver runs the real task commit against a mock producer).

>>> import streams as st
>>> from streams.runtime.driver import TopologyTestDriver
>>> t = st.Topology("cp"); t.source("in").count("counts").to("out", value=st.serde.INT)
>>> d = TopologyTestDriver(t, auto_commit=False); d.pipe("in", {}, key="a")
>>> task = next(iter(d.tasks.values()))
>>> task.checkpoint.uncommitted()
{TopicPartition(topic='in', partition=0): 1}
>>> d.commit(); task.checkpoint.uncommitted()
{}
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from streams.core.errors import BrokerError, TaskMigratedError
from streams.runtime.broker import TopicPartition
from streams.runtime.restore import ChangelogReader, RestoreProgress, restore_stores
from streams.runtime.watermarks import END_OF_TIME, MIN_WATERMARK

if TYPE_CHECKING:
    from streams.runtime.task import Task

T = TypeVar("T")


class CommitIO(Protocol):
    """The broker side of a commit: what the worker's producers and consumer do, or the
    driver's embedded broker."""

    async def flush(self) -> None:
        """At-least-once: make every record produced so far durable."""
        ...

    async def commit_offsets(
        self, offsets: Mapping[TopicPartition, int], metadata: Mapping[TopicPartition, str]
    ) -> None:
        """At-least-once: commit the input offsets (with their metadata) of every task;
        raises :class:`~streams.core.errors.TaskMigratedError` if the group refused them."""
        ...

    async def commit_transaction(
        self,
        task: Task,
        offsets: Mapping[TopicPartition, int],
        metadata: Mapping[TopicPartition, str],
    ) -> None:
        """Exactly-once: commit ``task``'s open transaction with its input offsets."""
        ...

    async def begin(self, task: Task) -> None:
        """Exactly-once: open ``task``'s next transaction."""
        ...

    async def end_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """The end offsets of changelog partitions (after the commit)."""
        ...

    async def abandon(self, tasks: Sequence[Task], err: Exception) -> None:
        """Their commit failed: close ``tasks`` without writing their stores (an open
        transaction is aborted) and get them back from their last commit."""
        ...


class TaskCheckpoint:
    """The checkpoint state and steps of one task (``task.checkpoint``): the input offsets
    committed so far, and the task's part of :func:`commit` and :func:`restore`."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.committed: dict[TopicPartition, int] = {}  # input offsets of the last commit

    def uncommitted(self) -> dict[TopicPartition, int]:
        """Input offsets reached since the last commit."""
        task = self.task
        return {
            tp: o
            for tp, o in task.positions.items()
            if self.committed.get(tp) != o and tp.topic not in task.connector_inputs
        }

    def prepare(self, timestamp_ms: int, *, sources_last: bool = False) -> list[TopicPartition]:
        """Send every store's dirty entries to its changelog; return the partitions written.
        With ``sources_last`` (at-least-once), the connector sources' positions are left for
        :meth:`prepare_sources`, after everything else is durable."""
        task = self.task
        if task.stores is None:
            return []
        for sink in task.sinks:  # their commit state goes into this commit's changelog,
            sink.pre_commit(task.positions)  # with the input positions it covers
        names = None
        if sources_last and task.source_stores:
            names = [n for n in task.stores.stores if n not in task.source_stores]
        return self._send(task.stores.prepare_commit(names), timestamp_ms)

    def prepare_sources(self, timestamp_ms: int) -> list[TopicPartition]:
        """At-least-once, once the outputs and other changelogs are durable: send the
        connector sources' positions (their offsets commit, as the input offsets of a topic
        commit after the flush; a crash in between re-reads, never skips)."""
        task = self.task
        if task.stores is None or not task.source_stores:
            return []
        return self._send(task.stores.prepare_commit(task.source_stores), timestamp_ms)

    def _send(self, changes: list[Any], timestamp_ms: int) -> list[TopicPartition]:
        written = []
        for topic, partition, recs in changes:
            self.task.collector.send_batch(
                topic, partition, [(k, v, timestamp_ms, ()) for k, v in recs]
            )
            written.append(TopicPartition(topic, partition))
        return written

    def finish(self, changelog_end: Mapping[str, int]) -> None:
        """After the changelog and offsets are durable: write stores with the offsets reached."""
        task = self.task
        if task.stores is not None:
            src = {f"{tp.topic}:{tp.partition}": off for tp, off in task.positions.items()}
            # a table whose changelog is its source topic is as far as that topic is processed
            ends = dict(changelog_end)
            for tp, off in task.positions.items():
                if tp.topic in task._source_backed:
                    ends[tp.topic] = off
            task.stores.finish_commit(ends, src, self._committable_watermark())
        for sink in task.sinks:
            sink.post_commit()
        self.committed.update(task.positions)

    def abort(self) -> None:
        """The commit failed: connector sinks drop what they hold in memory (what they staged
        is for the next owner's recovery to decide)."""
        for sink in self.task.sinks:
            sink.abort()

    def _committable_watermark(self) -> int | None:
        # (the end of a bounded run is not remembered: the next run starts from real time)
        task = self.task
        if task.timed and MIN_WATERMARK < task.watermark < END_OF_TIME:
            return task.watermark
        return None

    def offset_metadata(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, str]:
        """Event time to commit with the offsets of ``tps`` (see
        :meth:`~streams.runtime.watermarks.WatermarkTracker.checkpoint`); empty for a task
        without event-time steps."""
        task = self.task
        if not task.timed:
            return {}
        wm = self._committable_watermark()
        return {tp: task.watermarks.checkpoint(tp.topic, tp.partition, wm) for tp in tps}

    def restore_time(self, metadata: Mapping[TopicPartition, str]) -> None:
        """Before the first batch after an assignment: take back the event time committed
        with the input offsets, so a restarted or moved task neither waits for watermark
        announcements made before its committed offsets nor reopens closed windows."""
        task = self.task
        if not task.timed:
            return
        now = task.clock()
        floors = [
            task.watermarks.restore(tp.topic, tp.partition, meta, now)
            for tp, meta in metadata.items()
        ]
        known = [f for f in floors if f is not None]
        if known:
            task._resume_from(max(known))

    def resume_time(self) -> None:
        """After a restore: continue from the watermark of the last commit (if the local copy
        kept it), so windows closed before a restart are never reopened. File sinks finish
        (or discard) what their last commit left, and skip input they hold that the task reads
        again (its changelog got ahead of the offsets: see :mod:`operators.connectors.api`)."""
        task = self.task
        for sink in task.sinks:
            sink.recover(task.positions, task._source_backed)
        if task.stores is None or not task.timed:
            return
        wm = task.stores.stored_watermark()
        if wm is not None:
            task._resume_from(wm)


async def commit(
    tasks: Sequence[Task], io: CommitIO, *, exactly_once: bool, timestamp_ms: int
) -> list[Task] | None:
    """Checkpoint ``tasks`` (see the module docstring); return those that committed, or
    ``None`` if the group refused the offsets (every task abandoned)."""
    # 0. async steps' calls in flight end and emit: the offsets never pass a record in flight
    for t in tasks:
        await t.drain_async()
    # 1. state: dirty entries -> changelog records (produced with the outputs)
    last = not exactly_once
    changelogs = [tp for t in tasks for tp in t.checkpoint.prepare(timestamp_ms, sources_last=last)]
    # 2. outputs + changelogs durable, then input offsets (one transaction per task under EOS)
    if exactly_once:
        ok = await asyncio.gather(*(_commit_transaction(t, io) for t in tasks))
        done = [t for t, committed in zip(tasks, ok, strict=True) if committed]
    else:
        offsets: dict[TopicPartition, int] = {}
        metadata: dict[TopicPartition, str] = {}
        for t in tasks:
            changed = t.checkpoint.uncommitted()
            offsets.update(changed)
            metadata.update(t.checkpoint.offset_metadata(changed))
        await io.flush()
        positions = [tp for t in tasks for tp in t.checkpoint.prepare_sources(timestamp_ms)]
        if positions:  # connector sources: their positions after the rest, then durable
            changelogs += positions
            await io.flush()
        if offsets:
            try:
                await io.commit_offsets(offsets, metadata)
            except TaskMigratedError as e:
                for t in tasks:
                    t.checkpoint.abort()
                await io.abandon(tasks, e)
                return None
        done = list(tasks)
    # 3. stores: the same entries, with the changelog offsets they correspond to
    ends = await io.end_offsets(changelogs) if changelogs else {}
    for t in done:
        t.checkpoint.finish({tp.topic: e for tp, e in ends.items() if tp.partition == t.partition})
    return done


async def _commit_transaction(task: Task, io: CommitIO) -> bool:
    offsets = task.checkpoint.uncommitted()
    try:
        await io.commit_transaction(task, offsets, task.checkpoint.offset_metadata(offsets))
        await io.begin(task)
    except BrokerError as e:
        task.checkpoint.abort()
        await io.abandon([task], e)
        return False
    return True


async def restore(
    task: Task, reader: ChangelogReader, progress: RestoreProgress | None = None
) -> int:
    """Bring ``task``'s stores up to their changelogs, then resume event time from what they
    kept; return the records replayed. (:meth:`TaskCheckpoint.restore_time` comes first.)"""
    n = 0
    if task.stores is not None:
        n = await restore_stores(task.stores, reader, progress)
    task.checkpoint.resume_time()
    return n


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to its end now, without an event loop: it must never suspend (all its
    awaits complete at once, as the test driver's broker side does).

    >>> async def two() -> int:
    ...     return 2
    >>> run_sync(two())
    2
    """
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("run_sync: the coroutine waited for I/O (use an event loop)")


__all__ = ["CommitIO", "TaskCheckpoint", "commit", "restore", "run_sync"]
