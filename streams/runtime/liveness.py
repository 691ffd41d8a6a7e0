"""Liveness: a partition that has lag while its task makes no progress is reported, not hidden.

A consumer that silently stops fetching (a partition left paused, a task stuck) looks healthy
from outside: the process runs, nothing fails. The watchdog checks every few seconds: a
partition is **stalled** when its task has processed nothing for ``stall_timeout_ms`` while the
partition has lag. It is then logged (once when it stalls, once when it recovers), counted in
the ``streams_stalled_partitions`` gauge, and makes ``/health`` unhealthy.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from streams.core.errors import BrokerError
from streams.runtime.broker import TopicPartition

if TYPE_CHECKING:
    from streams.runtime.worker import Worker

log = logging.getLogger("streams.worker")
T = TypeVar("T")


def stalled_partitions(
    worker: Worker, lag: dict[TopicPartition, int], now: float | None = None
) -> list[dict[str, Any]]:
    """Partitions with lag whose (restored) task has been idle for ``stall_timeout_ms``."""
    now = time.monotonic() if now is None else now
    timeout = worker.config.stall_timeout_ms / 1000
    out: list[dict[str, Any]] = []
    for slot in worker.slots.values():
        if not slot.ready.is_set() or slot.meter is None:
            continue
        idle = now - slot.meter.last_progress
        if idle < timeout:
            continue
        for tp in sorted(slot.inputs):
            if lag.get(tp, 0) > 0:
                out.append(
                    {
                        "topic": tp.topic,
                        "partition": tp.partition,
                        "lag": lag[tp],
                        "idle_seconds": round(idle, 3),
                    }
                )
    return out


async def watchdog(worker: Worker) -> None:
    """Check for stalled partitions every ``stall_timeout_ms / 4`` (at most every 5 s)."""
    from streams.runtime.metrics import refresh_lag

    every = min(5.0, worker.config.stall_timeout_ms / 4000)
    reported: set[tuple[str, int]] = set()
    while True:
        await asyncio.sleep(every)
        stalled = stalled_partitions(worker, await refresh_lag(worker))
        worker.metrics.stalled.set(len(stalled))
        now = {(s["topic"], s["partition"]): s for s in stalled}
        for key in now.keys() - reported:
            s = now[key]
            log.warning(
                "partition %s-%d is stalled: lag %d, its task processed nothing for %.1f s",
                s["topic"],
                s["partition"],
                s["lag"],
                s["idle_seconds"],
            )
        for topic, partition in reported - now.keys():
            log.info("partition %s-%d is moving again", topic, partition)
        reported = set(now)


async def until_reachable(call: Callable[[], Awaitable[T]], timeout_s: float) -> T:
    """``await call()``, retried once a second while the broker cannot be reached (a
    connection error), for up to ``timeout_s``; other errors are raised at once."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await call()
        except BrokerError as e:
            if "connect" not in str(e).lower() or time.monotonic() >= deadline:
                raise
            log.warning("broker not reachable (%s); retrying", e)
            await asyncio.sleep(1)


__all__ = ["stalled_partitions", "until_reachable", "watchdog"]
