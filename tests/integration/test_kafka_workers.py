"""Worker processes on the real broker: scale-out, SIGKILL takeover, exactly-once restarts."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import streams as st
from streams.core.partitioner import partition_for
from streams.runtime.broker import TopicPartition, TopicSpec
from streams.runtime.kafka import KafkaBroker

pytestmark = pytest.mark.kafka
REPO = Path(__file__).resolve().parents[2]


def produce(bootstrap: str, topic: str, partitions: int, start: int, n: int) -> None:
    async def go() -> None:
        b = KafkaBroker(bootstrap)
        p = b.producer()
        now = int(time.time() * 1000)
        by_part: dict[int, list] = {}
        for i in range(start, start + n):
            key = f"k{i % 40}"
            part = partition_for(key.encode(), partitions)
            by_part.setdefault(part, []).append(
                (key.encode(), st.serde.JSON.serialize({"id": i}), now, ())
            )
        for part, recs in by_part.items():
            p.send_batch(topic, part, recs)
        await p.flush()
        await p.close()
        await b.close()

    asyncio.run(go())


def read_all(bootstrap: str, topic: str, partitions: int) -> list[tuple[str, int]]:
    """Every record of ``topic`` as a read_committed consumer sees it: (key, int value)."""

    async def go() -> list[tuple[str, int]]:
        b = KafkaBroker(bootstrap)
        c = b.consumer(None, read_committed=True)
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        c.assign(tps)
        for tp in tps:
            c.seek(tp, 0)
        ends = await c.end_offsets(tps)
        out: list[tuple[str, int]] = []
        deadline = time.monotonic() + 30
        while any(c.position(tp) < ends[tp] for tp in tps) and time.monotonic() < deadline:
            for msgs in (await c.getmany(timeout_ms=500)).values():
                out.extend((m.key.decode(), st.serde.INT.deserialize(m.value)) for m in msgs)
        await c.close()
        await b.close()
        return out

    return asyncio.run(go())


def create_topics(bootstrap: str, specs: list[TopicSpec]) -> None:
    async def go() -> None:
        b = KafkaBroker(bootstrap)
        await b.create_topics(specs)
        await b.close()

    asyncio.run(go())


class WorkerProc:
    def __init__(
        self, ref: str, bootstrap: str, env: dict[str, str], state_dir: Path, log: Path, *extra: str
    ) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streams",
                "run",
                ref,
                "--bootstrap",
                bootstrap,
                "--state-dir",
                str(state_dir),
                *extra,
            ],
            env={**os.environ, **env, "PYTHONPATH": str(REPO)},
            stdout=subprocess.DEVNULL,
            stderr=log.open("ab"),
            cwd=REPO,
        )

    def tasks(self) -> str:
        lines = [ln for ln in self.log.read_text().splitlines() if "tasks: " in ln]
        return lines[-1].split("tasks: ")[1] if lines else ""

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


def wait_for(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_two_workers_split_partitions_and_survive_a_sigkill(kafka_bootstrap, tmp_path):
    run = uuid.uuid4().hex[:8]
    app, src, out = f"app-{run}", f"in-{run}", f"out-{run}"
    create_topics(kafka_bootstrap, [TopicSpec(src, 4), TopicSpec(out, 4)])
    env = {"STREAMS_TEST_APP": app, "STREAMS_TEST_IN": src, "STREAMS_TEST_OUT": out}
    ref = "tests.integration.kafka_apps:distinct_ids"
    produce(kafka_bootstrap, src, 4, 0, 4000)
    w1 = WorkerProc(ref, kafka_bootstrap, env, tmp_path / "w1", tmp_path / "w1.log")
    w2 = WorkerProc(ref, kafka_bootstrap, env, tmp_path / "w2", tmp_path / "w2.log")
    try:
        # both members own two of the four tasks
        wait_for(
            lambda: (
                len(w1.tasks().split(",")) == 2
                and len(w2.tasks().split(",")) == 2
                and set(w1.tasks().split(",")).isdisjoint(w2.tasks().split(","))
            ),
            90,
            f"a 2+2 split (w1: {w1.tasks()!r}, w2: {w2.tasks()!r})",
        )
        wait_for(lambda: len(read_all(kafka_bootstrap, out, 4)) > 0, 60, "first outputs")
        w2.kill()
        produce(kafka_bootstrap, src, 4, 4000, 4000)  # more work after the kill
        wait_for(lambda: len(w1.tasks().split(",")) == 4, 90, "w1 to take over all tasks")

        expected = {f"k{k}": 8000 // 40 for k in range(40)}

        def done() -> bool:
            final: dict[str, int] = {}
            for k, v in read_all(kafka_bootstrap, out, 4):
                final[k] = v
            return final == expected

        wait_for(done, 90, "every key to reach its exact distinct count")
    finally:
        w1.stop()
        w2.stop()


def test_exactly_once_across_repeated_sigkills(kafka_bootstrap, tmp_path):
    run = uuid.uuid4().hex[:8]
    app, src, out, counts = f"eos-{run}", f"in-{run}", f"out-{run}", f"counts-{run}"
    create_topics(kafka_bootstrap, [TopicSpec(src, 2), TopicSpec(out, 2), TopicSpec(counts, 2)])
    env = {
        "STREAMS_TEST_APP": app,
        "STREAMS_TEST_IN": src,
        "STREAMS_TEST_OUT": out,
        "STREAMS_TEST_COUNTS": counts,
    }
    ref = "tests.integration.kafka_apps:eos_pipeline"
    total = 0
    for round_ in range(3):  # produce, let it run a little, kill -9 mid-stream, restart
        produce(kafka_bootstrap, src, 2, total, 3000)
        total += 3000
        w = WorkerProc(
            ref,
            kafka_bootstrap,
            env,
            tmp_path / "w",
            tmp_path / f"w{round_}.log",
            "--guarantee",
            "exactly_once",
        )
        wait_for(lambda: len(read_all(kafka_bootstrap, out, 2)) > 0, 60, "progress")
        time.sleep(0.3 * round_)
        w.kill()
    # the last run goes on until every record is through (a killed member's partitions are
    # only reassigned once its session times out), then stops cleanly
    w = WorkerProc(
        ref,
        kafka_bootstrap,
        env,
        tmp_path / "w",
        tmp_path / "final.log",
        "--guarantee",
        "exactly_once",
    )
    try:
        wait_for(lambda: len(read_all(kafka_bootstrap, out, 2)) >= total, 120, f"{total} outputs")
        wait_for(
            lambda: sum(v for v in dict(read_all(kafka_bootstrap, counts, 2)).values()) >= total,
            60,
            "final counts",
        )
    finally:
        assert w.stop() == 0, (tmp_path / "final.log").read_text()[-3000:]

    values = sorted(v for _, v in read_all(kafka_bootstrap, out, 2))
    assert values == [i * 10 for i in range(total)]  # each input exactly once
    final: dict[str, int] = {}
    for k, v in read_all(kafka_bootstrap, counts, 2):
        final[k] = v
    assert final == {f"k{k}": total // 40 for k in range(40)}  # state exact, no double count


def test_streams_run_workers_spawns_a_consumer_group(kafka_bootstrap, tmp_path):
    """`streams run --workers 2` starts two processes that split the partitions; SIGTERM to
    the parent stops both cleanly."""
    run = uuid.uuid4().hex[:8]
    app, src, out = f"cli-{run}", f"in-{run}", f"out-{run}"
    create_topics(kafka_bootstrap, [TopicSpec(src, 4), TopicSpec(out, 4)])
    produce(kafka_bootstrap, src, 4, 0, 2000)
    env = {"STREAMS_TEST_APP": app, "STREAMS_TEST_IN": src, "STREAMS_TEST_OUT": out}
    log = tmp_path / "cli.log"
    parent = WorkerProc(
        "tests.integration.kafka_apps:distinct_ids",
        kafka_bootstrap,
        env,
        tmp_path / "state",
        log,
        "--workers",
        "2",
    )
    try:
        expected = {f"k{k}": 2000 // 40 for k in range(40)}
        wait_for(
            lambda: dict(read_all(kafka_bootstrap, out, 4)) == expected, 90, "all keys counted"
        )

        def split() -> bool:  # the second process joined and the group split the 4 tasks
            lines = [
                ln.split("tasks: ")[1] for ln in log.read_text().splitlines() if "tasks: " in ln
            ]
            return any(len(t.split(",")) == 2 for t in lines)

        wait_for(split, 90, "the two processes to share the partitions")
    finally:
        assert parent.stop() == 0
    dirs = sorted(p.name for p in (tmp_path / "state").iterdir())
    assert dirs == ["worker-0", "worker-1"]
