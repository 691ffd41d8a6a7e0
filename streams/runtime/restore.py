"""Restoring a task's stores from their changelog topics (only the delta past the local copy).

Progress is logged every second and reported to the worker's metrics
(``streams_restored_records_total``, ``streams_restore_remaining_records``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from state.task_state import TaskStores
from streams.runtime.broker import Broker, Consumer, TopicPartition, key_values
from streams.runtime.metrics import WorkerMetrics

log = logging.getLogger("streams.worker")


async def restore_stores(
    broker: Broker, stores: TaskStores, batch_records: int, metrics: WorkerMetrics
) -> None:
    """Replay each store's changelog from its stored offset to the changelog's end."""
    reader = broker.consumer(None, read_committed=True)
    try:
        steps = stores.restore_plan()
        tps = [TopicPartition(s.topic, stores.partition) for s in steps]
        ends = await reader.end_offsets(tps)
        for step, tp in zip(steps, tps, strict=True):
            start, end = step.start, ends[tp]
            if start > end:  # the changelog is behind the local copy (it was reset)
                log.warning("store '%s' is ahead of %s; rebuilding", step.store, tp)
                stores.reset(step.store)
                start = 0
            metrics.restore_progress(step.store, tp.partition, 0, end - start)
            try:
                if start < end:
                    await _replay(
                        reader, stores, step.store, tp, start, end, batch_records, metrics
                    )
            except asyncio.CancelledError:
                metrics.forget_restore(step.store, tp.partition)
                raise
            metrics.restore_progress(step.store, tp.partition, 0, 0)
    finally:
        await reader.close()


async def _replay(
    reader: Consumer,
    stores: TaskStores,
    name: str,
    tp: TopicPartition,
    start: int,
    end: int,
    batch_records: int,
    metrics: WorkerMetrics,
) -> None:
    reader.assign([tp])
    reader.seek(tp, start)
    t0 = last_log = time.monotonic()
    done = 0
    while reader.position(tp) < end:
        batches = await reader.getmany(timeout_ms=200, max_records=batch_records)
        msgs = batches.get(tp, [])
        if not msgs:
            continue
        # changelog keys are never null (the store wrote them)
        recs = key_values(msgs)
        position = reader.position(tp)
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


__all__ = ["restore_stores", "tail_standbys"]
