"""Standby replicas of a worker: warm copies of stateful tasks the group leader assigned it.

A standby tails its stores' changelog topics (:func:`streams.runtime.restore.tail_standbys`)
so that a task moving here restores only the last few records (Kafka Streams'
``num.standby.replicas``). Functions over the :class:`~streams.runtime.worker.Worker`, kept
apart from its run loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from state.task_state import TaskStores
from streams.runtime.restore import tail_standbys
from streams.runtime.task import TaskId

if TYPE_CHECKING:
    from streams.runtime.worker import Worker

log = logging.getLogger("streams.worker")


async def stop_standbys(self: Worker, ids: set[TaskId]) -> None:
    """Stop tailing and close the standbys ``ids``."""
    if self._standby_runner is not None:
        self._standby_runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._standby_runner
        self._standby_runner = None
    for tid in ids:
        stores = self.standbys.pop(tid, None)
        if stores is not None:
            stores.close()


async def sync_standbys(self: Worker) -> None:
    """Keep warm copies of the stateful tasks the group leader assigned us as standbys."""
    if self.config.num_standby_replicas < 1 or self._consumer is None:
        return
    if self.config.state_backend != "rocksdb":
        log.warning("standby replicas need the rocksdb state backend; none kept")
        return
    numbers = self._consumer.standby_partitions()
    want: set[TaskId] = set()
    for sub in self.plan.subtopologies:
        if sub.stores:
            n = max(self._counts.get(t, 0) for t in sub.inputs)
            want |= {TaskId(sub.id, p) for p in numbers if p < n}
    want -= set(self.slots)
    if want == set(self.standbys) and self._standby_runner is not None:
        return
    await stop_standbys(self, set(self.standbys) - want)
    for tid in want - set(self.standbys):
        sub = self.plan.subtopologies[tid.subtopology]
        defs = [s.definition for s in sub.stores]
        self.standbys[tid] = TaskStores(
            defs,
            tid.partition,
            backend="rocksdb",
            state_dir=self.state_dir,
            rocksdb=self.rocksdb,
        )
    if self.standbys:
        self._standby_runner = asyncio.create_task(_tail(self), name="standbys")
    log.info("standby tasks: %s", ",".join(sorted(str(t) for t in self.standbys)) or "none")


async def _tail(self: Worker) -> None:
    def count(n: int) -> None:
        self.standby_records += n

    batch = self.config.restore_batch_records
    await tail_standbys(self.broker, list(self.standbys.values()), batch, count)


__all__ = ["stop_standbys", "sync_standbys"]
