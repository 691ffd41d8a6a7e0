"""Restoring a task's stores from their changelog topics (only the delta past the local copy).

:func:`restore_stores` is the one restore sequence: per store, the offset its local copy
reached against the changelog's end (a local copy ahead of the changelog, i.e. the changelog
was reset, is rebuilt from 0), then the records in between replayed. Where the records come
from is a :class:`ChangelogReader`: a consumer in the worker (:class:`ConsumerChangelog`), the
embedded broker's log in the test driver (:class:`EmbeddedChangelog`, whose reads complete at
once, so a restore through it runs without an event loop; see
:func:`streams.runtime.checkpoint.run_sync`).

>>> from state.task_state import StoreDef, TaskStores
>>> from streams.core.serde import KEY, PICKLE
>>> from streams.runtime.checkpoint import run_sync
>>> from streams.runtime.embedded import EmbeddedBroker
>>> b = EmbeddedBroker(); _ = b.append("app-c-changelog", 0, b"k", b"v", 0)
>>> ts = TaskStores([StoreDef("c", "kv", "app-c-changelog", KEY, PICKLE)], 0)
>>> run_sync(restore_stores(ts, EmbeddedChangelog(b)))
1

Progress is logged every second and reported to the worker's metrics
(``streams_restored_records_total``, ``streams_restore_remaining_records``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from state.cache import ChangelogRecord
from state.task_state import TaskStores
from streams.runtime.broker import Broker, Consumer, TopicPartition, key_values
from streams.runtime.embedded import EmbeddedBroker

log = logging.getLogger("streams.worker")


class ChangelogReader(Protocol):
    """The broker side of a restore: reads changelog partitions."""

    async def end_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]: ...

    async def seek(self, tp: TopicPartition, offset: int) -> None:
        """Read ``tp`` from ``offset`` on."""
        ...

    async def read(self, tp: TopicPartition) -> tuple[list[ChangelogRecord], int]:
        """The next records of ``tp`` (maybe none yet) and the position after them."""
        ...


class RestoreProgress(Protocol):
    """Where restore progress goes (:class:`~streams.runtime.metrics.WorkerMetrics`)."""

    def restore_progress(
        self, store: str, partition: int, records: int, remaining: int
    ) -> None: ...

    def forget_restore(self, store: str, partition: int) -> None: ...


class ConsumerChangelog:
    """A worker's changelog reader: a group-less consumer, ``batch_records`` per fetch."""

    def __init__(self, reader: Consumer, batch_records: int) -> None:
        self.reader = reader
        self.batch_records = batch_records

    async def end_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        return await self.reader.end_offsets(tps)

    async def seek(self, tp: TopicPartition, offset: int) -> None:
        self.reader.assign([tp])
        self.reader.seek(tp, offset)

    async def read(self, tp: TopicPartition) -> tuple[list[ChangelogRecord], int]:
        batches = await self.reader.getmany(timeout_ms=200, max_records=self.batch_records)
        # changelog keys are never null (the store wrote them)
        recs = key_values(batches.get(tp, []))
        return recs, self.reader.position(tp)


class EmbeddedChangelog:
    """The test driver's changelog reader: the embedded broker's log, read at once."""

    def __init__(self, broker: EmbeddedBroker) -> None:
        self.broker = broker
        self._at: dict[TopicPartition, int] = {}

    async def end_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.broker.end_offset(tp) for tp in tps}

    async def seek(self, tp: TopicPartition, offset: int) -> None:
        self._at[tp] = offset

    async def read(self, tp: TopicPartition) -> tuple[list[ChangelogRecord], int]:
        recs = key_values(self.broker.fetch_raw(tp, self._at[tp]))
        self._at[tp] = end = self.broker.end_offset(tp)
        return recs, end


class _NoProgress:
    def restore_progress(self, store: str, partition: int, records: int, remaining: int) -> None:
        pass

    def forget_restore(self, store: str, partition: int) -> None:
        pass


async def restore_stores(
    stores: TaskStores, reader: ChangelogReader, progress: RestoreProgress | None = None
) -> int:
    """Replay each store's changelog from its stored offset to the changelog's end; return
    the records replayed."""
    metrics = progress or _NoProgress()
    steps = stores.restore_plan()
    tps = [TopicPartition(s.topic, stores.partition) for s in steps]
    ends = await reader.end_offsets(tps)
    n = 0
    for step, tp in zip(steps, tps, strict=True):
        start, end = step.start, ends[tp]
        if start > end:  # the changelog is behind the local copy (it was reset)
            log.warning("store '%s' is ahead of %s; rebuilding", step.store, tp)
            stores.reset(step.store)
            start = 0
        metrics.restore_progress(step.store, tp.partition, 0, end - start)
        try:
            if start < end:
                n += await _replay(reader, stores, step.store, tp, start, end, metrics)
        except asyncio.CancelledError:
            metrics.forget_restore(step.store, tp.partition)
            raise
        metrics.restore_progress(step.store, tp.partition, 0, 0)
    return n


async def _replay(
    reader: ChangelogReader,
    stores: TaskStores,
    name: str,
    tp: TopicPartition,
    start: int,
    end: int,
    metrics: RestoreProgress,
) -> int:
    await reader.seek(tp, start)
    t0 = last_log = time.monotonic()
    done = 0
    position = start
    while position < end:
        recs, position = await reader.read(tp)
        if not recs:
            continue
        stores.restore(name, recs, position)
        done += len(recs)
        metrics.restore_progress(name, tp.partition, len(recs), max(0, end - position))
        now = time.monotonic()
        if now - last_log >= 1.0:
            rate = done / (now - t0)
            left = end - position
            log.info(
                "restoring %s from %s: %d/%d records, %.0f records/s, ETA %.1f s",
                name,
                tp,
                done,
                end - start,
                rate,
                left / rate if rate else 0.0,
            )
            last_log = now
    log.info("restored %s from %s: %d records in %.2f s", name, tp, done, time.monotonic() - t0)
    return done


async def tail_standbys(
    broker: Broker,
    standbys: Iterable[TaskStores],
    batch_records: int,
    count: Callable[[int], None],
) -> None:
    """Keep standby copies of stores current by tailing their changelogs (until cancelled)."""
    reader = broker.consumer(None, read_committed=True)
    targets: dict[TopicPartition, tuple[TaskStores, str]] = {}
    try:
        for stores in standbys:
            for step in stores.restore_plan():
                targets[TopicPartition(step.topic, stores.partition)] = (stores, step.store)
        reader.assign(list(targets))
        for tp, (stores, name) in targets.items():
            reader.seek(tp, stores.stored_offset(name) or 0)
        while True:
            batches = await reader.getmany(timeout_ms=500, max_records=batch_records)
            for tp, msgs in batches.items():
                stores, name = targets[tp]
                recs = key_values(msgs)
                stores.restore(name, recs, reader.position(tp))
                count(len(recs))
    finally:
        await reader.close()


__all__ = [
    "ChangelogReader",
    "ConsumerChangelog",
    "EmbeddedChangelog",
    "RestoreProgress",
    "restore_stores",
    "tail_standbys",
]
