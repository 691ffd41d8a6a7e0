"""map_async on the real broker: a worker in process, and worker processes killed with
SIGKILL mid-stream, calls in flight, under exactly-once: nothing lost, nothing twice."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import streams as st
from streams.runtime.broker import TopicPartition, TopicSpec
from streams.runtime.kafka import KafkaBroker
from tests.integration.test_kafka_workers import create_topics, produce, read_all, wait_for

pytestmark = pytest.mark.kafka
REPO = Path(__file__).resolve().parents[2]


async def _lookup(v):
    """A remote call of 1-5 ms."""
    await asyncio.sleep(random.uniform(0.001, 0.005))
    return v["id"] * 10


async def _slow_lookup(v):
    """A remote call of 10-20 ms (with 5 in flight, ~330 records/s per task: a round of
    input takes seconds, so the kills come mid-stream)."""
    await asyncio.sleep(random.uniform(0.01, 0.02))
    return v["id"] * 10


def async_pipeline(app: str, src: str, out: str) -> st.Topology:
    """An unordered map_async between two topics."""
    t = st.Topology(app)
    (
        t.source(src)
        .map_async(_slow_lookup, concurrency=5, ordered=False, timeout=5, retries=2)
        .to(out, value=st.serde.INT)
    )
    return t


class WorkerProc:
    """A worker process (``python -m tests.integration.test_kafka_async``), exactly-once,
    fetching 50 records at a time (``streams run`` fetches up to 10,000: with a slow async
    step it would commit once per round, and the kills would never come between commits)."""

    def __init__(self, bootstrap: str, app: str, src: str, out: str, state: Path, log: Path):
        args = [bootstrap, app, src, out, str(state)]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.test_kafka_async", *args],
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.DEVNULL,
            stderr=log.open("ab"),
            cwd=REPO,
        )

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait(10)


def _serve(bootstrap: str, app: str, src: str, out: str, state: str) -> None:
    cfg = st.Config(processing_guarantee="exactly_once", max_poll_records=50, state_dir=state)
    w = st.Worker(async_pipeline(app, src, out), KafkaBroker(bootstrap), cfg)
    asyncio.run(w.run(handle_signals=True))


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> int:
    """The input offsets ``group`` committed on ``topic``, summed over its partitions."""

    async def go() -> int:
        b = KafkaBroker(bootstrap)
        c = b.consumer(group)
        try:
            offs = [await c.committed(TopicPartition(topic, p)) for p in range(partitions)]
        finally:
            await c.close()
            await b.close()
        return sum(o or 0 for o in offs)

    return asyncio.run(go())


def test_map_async_on_kafka_keeps_order_per_partition(kafka_bootstrap):
    run = uuid.uuid4().hex[:8]
    src, out = f"in-{run}", f"out-{run}"
    create_topics(kafka_bootstrap, [TopicSpec(src, 2), TopicSpec(out, 2)])
    produce(kafka_bootstrap, src, 2, 0, 2000)

    async def go() -> None:
        t = st.Topology(f"async-{run}")
        t.source(src).map_async(_lookup, concurrency=50).to(out, value=st.serde.INT)
        cfg = st.Config(max_poll_records=100)
        await st.Worker(t, KafkaBroker(kafka_bootstrap), cfg).run(until_idle=True)

    asyncio.run(go())
    got = read_all(kafka_bootstrap, out, 2)
    assert sorted(v for _, v in got) == [i * 10 for i in range(2000)]
    by_key: dict[str, list[int]] = {}
    for k, v in got:  # (a key's records are in one partition, read in order)
        by_key.setdefault(k, []).append(v)
    assert all(vs == sorted(vs) for vs in by_key.values())  # ordered: input order kept


def test_map_async_exactly_once_across_sigkills_with_calls_in_flight(kafka_bootstrap, tmp_path):
    run = uuid.uuid4().hex[:8]
    app, src, out = f"eos-async-{run}", f"in-{run}", f"out-{run}"
    create_topics(kafka_bootstrap, [TopicSpec(src, 2), TopicSpec(out, 2)])
    state = tmp_path / "state"
    total = 0
    for round_ in range(3):  # produce, let it run a little, kill -9 mid-stream, restart
        produce(kafka_bootstrap, src, 2, total, 3000)
        total += 3000
        before = committed(kafka_bootstrap, app, src, 2)
        w = WorkerProc(kafka_bootstrap, app, src, out, state, tmp_path / f"w{round_}.log")
        wait_for(lambda b=before: committed(kafka_bootstrap, app, src, 2) > b, 90, "a commit")
        time.sleep(0.2 * round_)
        w.kill()
        assert committed(kafka_bootstrap, app, src, 2) < total  # (killed mid-stream)
    w = WorkerProc(kafka_bootstrap, app, src, out, state, tmp_path / "final.log")
    try:
        wait_for(lambda: committed(kafka_bootstrap, app, src, 2) == total, 180, "every input")
    finally:
        assert w.stop() == 0, (tmp_path / "final.log").read_text()[-3000:]
    values = sorted(v for _, v in read_all(kafka_bootstrap, out, 2))
    assert values == [i * 10 for i in range(total)]  # each input exactly once


if __name__ == "__main__":
    _serve(*sys.argv[1:6])
