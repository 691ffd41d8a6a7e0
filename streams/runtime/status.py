"""The live status line ``streams run`` shows on a terminal.

Once a second: records/s since the last tick, total records, consumer lag, tasks running and
restoring, restore records still to replay, the rebalance count and, when there are any, the
records steps dropped on purpose (``streams_records_dropped_total``). On a terminal the line is
rewritten in place; otherwise nothing is printed (logs carry the story there).

>>> s = Snapshot(processed=1500, lag=20, running=4, restoring=1, remaining=300, rebalances=2)
>>> format_status(s, Snapshot(processed=500), seconds=1.0)
'1,000 rec/s | 1,500 records | lag 20 | tasks 4 running, 1 restoring (300 to replay) | 2 rebalances'
>>> format_status(Snapshot(processed=10, lag=0, dropped=12), Snapshot(), seconds=1.0)
'10 rec/s | 10 records | lag 0 | tasks 0 running | 0 rebalances | dropped 12'
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from streams.runtime.worker import Worker


@dataclass
class Snapshot:
    processed: int = 0
    lag: int | None = None
    running: int = 0
    restoring: int = 0
    remaining: int = 0
    rebalances: int = 0
    dropped: int = 0


def format_status(now: Snapshot, before: Snapshot, seconds: float) -> str:
    rate = (now.processed - before.processed) / seconds if seconds > 0 else 0.0
    parts = [f"{rate:,.0f} rec/s", f"{now.processed:,} records"]
    parts.append("lag ?" if now.lag is None else f"lag {now.lag:,}")
    tasks = f"tasks {now.running} running"
    if now.restoring:
        tasks += f", {now.restoring} restoring ({now.remaining:,} to replay)"
    parts.append(tasks)
    parts.append(f"{now.rebalances} rebalance{'s' if now.rebalances != 1 else ''}")
    if now.dropped:
        parts.append(f"dropped {now.dropped:,}")
    return " | ".join(parts)


async def snapshot(worker: Worker) -> Snapshot:
    """Read the worker's counters and metrics (lag asks the broker: once a second at most)."""
    m = worker.metrics
    lag: int | None = None
    with contextlib.suppress(Exception):  # no assignment yet, broker briefly away
        lag = await worker._lag()
    states = m.task_states()
    remaining = 0
    for metric in m.restore_remaining.collect():
        remaining += int(sum(s.value for s in metric.samples))
    return Snapshot(
        processed=worker.processed,
        lag=lag,
        running=states.get("running", 0),
        restoring=states.get("restoring", 0),
        remaining=remaining,
        rebalances=int(m.sample("streams_rebalances_total") or 0),
        dropped=m.dropped_total(),
    )


async def status_line(
    worker: Worker,
    out: TextIO = sys.stderr,
    every_s: float = 1.0,
    extra: Callable[[], str] | None = None,
) -> None:
    """Rewrite one status line on ``out`` every ``every_s`` until cancelled; ``extra()`` is
    appended to it (the input's progress in a file run)."""
    before, t_before = Snapshot(), time.monotonic()
    width = 0
    try:
        while True:
            await asyncio.sleep(every_s)
            now, t_now = await snapshot(worker), time.monotonic()
            line = format_status(now, before, t_now - t_before)
            if extra is not None:
                line = f"{line} | {extra()}"
            out.write("\r" + line.ljust(width))
            out.flush()
            width = max(width, len(line))
            before, t_before = now, t_now
    finally:
        if width:
            out.write("\n")
            out.flush()
