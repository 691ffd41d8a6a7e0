"""``--workers N`` for the demos: a bounded run of ``streams run --workers N`` on Kafka.

The demos produce their input, then start the ``streams`` command (the same one users run):
``streams run MODULE:from_env --bootstrap B --workers N --until-idle``. It spawns N worker
processes in one consumer group, which split the tasks; each stops once its partitions are
consumed. Meanwhile this process tails an output topic to show records as they arrive.

The embedded broker lives inside one process, and a worker runs one per process, so ``--workers``
needs ``--bootstrap`` (see :func:`check_workers`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import streams as st
from streams.runtime.broker import Broker, TopicPartition

REPO = Path(__file__).resolve().parents[1]
PREFIX_ENV = "STREAMS_DEMO_PREFIX"  # read by the demos' ``from_env`` topology functions


def parse_run_args(ap: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Add the options both demos share (where and how they run), parse, check ``--workers``."""
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--bootstrap", help="run on Kafka at HOST:PORT (default: embedded broker)")
    ap.add_argument(
        "--workers",
        type=int,
        default=1,
        help="with --bootstrap: N worker processes in one consumer group (streams run --workers)",
    )
    ap.add_argument("--state-dir", help="RocksDB state directory (default: in memory)")
    ap.add_argument(
        "--prefix", default="", help="prefix of the topics and application id (isolates runs)"
    )
    args = ap.parse_args(argv)
    problem = check_workers(args.workers, args.bootstrap, args.partitions)
    if problem:
        ap.error(problem)
    return args


def check_workers(workers: int, bootstrap: str | None, partitions: int) -> str | None:
    """Why ``--workers`` cannot be used with these options (``None``: it can)."""
    if workers < 1:
        return "--workers must be >= 1"
    if workers > 1 and not bootstrap:
        return (
            "--workers N needs --bootstrap HOST:PORT: the embedded broker lives in this one "
            "process, and `streams run --workers` scales out through a Kafka consumer group"
        )
    if workers > partitions:
        return (
            f"--workers {workers} is more than --partitions {partitions}: a worker without a "
            "partition would have nothing to do (and a bounded run would never see it finish)"
        )
    return None


def decode(m: Any) -> tuple[Any, Any, int]:
    """``(key bytes, value bytes, timestamp)`` of a fetched record of either broker."""
    if isinstance(m, tuple):
        return m[0], m[1], m[2]
    return m.key, m.value, m.timestamp


async def read_topic(
    broker: Broker, topic: str, partitions: int
) -> list[tuple[str | None, Any, int]]:
    """Every record of ``topic`` (JSON values): ``(key, value, timestamp)``."""
    c = broker.consumer(None)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    c.assign(tps)
    for tp in tps:
        c.seek(tp, 0)
    ends = await c.end_offsets(tps)
    out: list[tuple[str | None, Any, int]] = []
    while any(c.position(tp) < ends[tp] for tp in tps):
        for msgs in (await c.getmany(timeout_ms=500)).values():
            for m in msgs:
                k, v, ts = decode(m)
                out.append((k.decode() if k else None, st.serde.JSON.deserialize(v), ts))
    await c.close()
    return out


async def _tail(
    broker: Broker, topic: str, partitions: int, show: Callable[[Any, Any], None]
) -> None:
    c = broker.consumer(None)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    c.assign(tps)
    for tp in tps:
        c.seek(tp, 0)
    try:
        while True:
            for msgs in (await c.getmany(timeout_ms=200)).values():
                for m in msgs:
                    k, v, _ = decode(m)
                    show(k.decode() if k else None, st.serde.JSON.deserialize(v))
    finally:
        await c.close()


async def run_workers(
    ref: str,
    bootstrap: str,
    workers: int,
    state_dir: str,
    prefix: str,
    *,
    tail: tuple[Broker, str, int, Callable[[Any, Any], None]] | None = None,
) -> float:
    """Run ``streams run REF --workers N --until-idle`` to completion; returns its wall time.

    ``tail`` = ``(broker, topic, partitions, show)`` calls ``show(key, value)`` for the records
    of ``topic`` while the workers run. The workers' log goes to ``STATE_DIR/workers.log``.
    """
    os.makedirs(state_dir, exist_ok=True)
    log_path = os.path.join(state_dir, "workers.log")
    cmd = [
        sys.executable,
        "-m",
        "streams",
        "run",
        ref,
        "--bootstrap",
        bootstrap,
        "--workers",
        str(workers),
        "--until-idle",
        "--state-dir",
        state_dir,
    ]
    env = {**os.environ, PREFIX_ENV: prefix}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    print(f"starting {workers} worker processes: streams run {ref} --workers {workers} ...")
    tailer = asyncio.create_task(_tail(*tail)) if tail is not None else None
    t0 = time.perf_counter()
    with open(log_path, "wb") as log:
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdout=log, stderr=log, cwd=str(REPO), env=env
        )
        try:
            code = await proc.wait()
        finally:
            if proc.returncode is None:  # interrupted: the command passes SIGTERM on
                proc.terminate()
                await proc.wait()
    seconds = time.perf_counter() - t0
    if tailer is not None:
        await asyncio.sleep(0.5)  # let the tail show the last records
        tailer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tailer
    if code != 0:
        with open(log_path, errors="replace") as f:
            last = f.read()[-3000:]
        raise RuntimeError(f"the workers failed (exit {code}); end of {log_path}:\n{last}")
    return seconds


__all__ = ["PREFIX_ENV", "check_workers", "read_topic", "run_workers"]
