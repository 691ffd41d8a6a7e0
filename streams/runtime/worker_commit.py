"""The worker's side of a checkpoint: its producers and consumer, and what a failed commit does.

:class:`WorkerCommitIO` is the :class:`~streams.runtime.checkpoint.CommitIO` a worker hands
to :func:`streams.runtime.checkpoint.commit`: the shared producer and the consumer group under
at-least-once, each task's transactional producer under exactly-once. A commit that fails
closes the tasks it concerned, without writing their stores, and the worker rejoins the group
to get them back from their last commit.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from streams.core.errors import BrokerError, TaskMigratedError
from streams.runtime.broker import Producer, TopicPartition
from streams.runtime.task import Task

if TYPE_CHECKING:
    from streams.runtime.worker import Worker, _TaskSlot

log = logging.getLogger("streams.worker")


class WorkerCommitIO:
    """One commit of ``worker``'s tasks in ``slots``."""

    def __init__(self, worker: Worker, slots: list[_TaskSlot]) -> None:
        self.worker = worker
        self.slots = {s.task.id: s for s in slots}

    async def flush(self) -> None:
        assert self.worker._producer is not None
        await self.worker._producer.flush()

    async def commit_offsets(
        self, offsets: Mapping[TopicPartition, int], metadata: Mapping[TopicPartition, str]
    ) -> None:
        assert self.worker._consumer is not None
        await self.worker._consumer.commit(offsets, metadata)

    def _producer(self, task: Task) -> Producer:
        producer = self.slots[task.id].producer
        assert producer is not None
        return producer

    async def commit_transaction(
        self,
        task: Task,
        offsets: Mapping[TopicPartition, int],
        metadata: Mapping[TopicPartition, str],
    ) -> None:
        await self._producer(task).commit_transaction(offsets, self.worker.group_id, metadata)

    async def begin(self, task: Task) -> None:
        await self._producer(task).begin()

    async def end_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        assert self.worker._consumer is not None
        return await self.worker._consumer.end_offsets(tps)

    async def abandon(self, tasks: Sequence[Task], err: Exception) -> None:
        slots = [self.slots[t.id] for t in tasks]
        if not self.worker.config.exactly_once:  # the group refused the offsets
            assert isinstance(err, TaskMigratedError)
            await self._migrated(slots, err)
            return
        w = self.worker
        for slot in slots:  # its transaction failed
            w.slots.pop(slot.task.id, None)
            await w._close_slot(slot)  # its open transaction is aborted
            if "fenced" in str(err):  # another worker owns this task now
                log.warning("task %s migrated (%s); closed it here", slot.task.id, err)
            else:  # e.g. the broker went away mid-commit: start the task over
                assert isinstance(err, BrokerError)
                await self._reinit(slot, err)

    async def _migrated(self, slots: list[_TaskSlot], err: TaskMigratedError) -> None:
        """At-least-once: the group rebalanced before this commit, so its offsets were refused
        and the partitions may be another member's now. Close the tasks without writing their
        stores back (the local copies stay at the last commit; whoever owns the partitions next
        restores the changelog and re-reads the input from the committed offsets: at-least-once
        duplicates, nothing lost) and rejoin (Kafka Streams' TaskMigratedException path).
        (Ending the worker instead would stop it at any rebalance that races a commit.)"""
        w = self.worker
        assert w._consumer is not None
        log.warning("commit refused, the group rebalanced (%s); rejoining", err)
        gone = [s for s in slots if w.slots.get(s.task.id) is s]
        for slot in gone:
            del w.slots[slot.task.id]
            await w._close_slot(slot)
        self._rejoin(gone)

    async def _reinit(self, slot: _TaskSlot, err: BrokerError) -> None:
        """Start a task over from its last commit after a failed (not fenced) commit, e.g. the
        broker went away mid-commit: the outcome of that transaction is unknown until the
        broker finishes it. The task is closed (its uncommitted state dropped) and the worker
        rejoins the group: the partitions come back through a normal assignment, whose new
        transactional producer lets the broker settle the transaction first, and whose
        positions are the committed offsets (Kafka Streams' "task corrupted" path). Seeking to
        ``committed()`` here instead read a stale offset (aiokafka has no KIP-447
        require_stable) and replayed committed records: duplicates, found by bench chaos."""
        assert self.worker._consumer is not None
        log.warning(
            "task %s: commit failed (%s); rejoining to restart it from its last commit",
            slot.task.id,
            err,
        )
        self._rejoin([slot])

    def _rejoin(self, slots: list[_TaskSlot]) -> None:
        """Ask the group for a new assignment after closing ``slots``' tasks: their input is
        paused meanwhile, and a bounded run does not end before the assignment comes (their
        input was fetched, so there is no lag, but it is not committed)."""
        w = self.worker
        assert w._consumer is not None
        for slot in slots:
            w._consumer.pause(sorted(slot.inputs))
        w._rejoining = True
        w._consumer.request_rejoin()


__all__ = ["WorkerCommitIO"]
