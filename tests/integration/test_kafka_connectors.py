"""Connectors on the real broker, in worker processes killed with SIGKILL at random points:
the Parquet sink publishes every input record exactly once under both guarantees (from a
topic and from a directory of files), and a file source resumes in the middle of its
directory (exactly-once outputs on a topic)."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from streams.runtime.broker import TopicSpec
from tests.integration.test_kafka_workers import create_topics, produce, read_all, wait_for

pytestmark = pytest.mark.kafka
REPO = Path(__file__).resolve().parents[2]
TOTAL = 3000


class Proc:
    def __init__(self, cfg: dict[str, Any], tmp: Path, name: str) -> None:
        path = tmp / f"{name}.json"
        path.write_text(json.dumps(cfg))
        self.log = tmp / f"{name}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.connector_worker", str(path)],
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("ab"),
            cwd=REPO,
        )

    def assigned(self) -> bool:
        return self.log.exists() and "streams.worker assigned" in self.log.read_text()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


def write_files(d: Path, n_files: int, per_file: int) -> None:
    d.mkdir(parents=True, exist_ok=True)
    for k in range(n_files):
        lines = "".join(
            json.dumps({"i": i}) + "\n" for i in range(k * per_file, (k + 1) * per_file)
        )
        (d / f"{k:03d}.jsonl").write_text(lines)


def run_with_kills(
    cfg: dict[str, Any], tmp: Path, seed: int, kills: int, done: Callable[[], bool]
) -> None:
    """Run workers one after the other, SIGKILLing each but the last at a random moment after
    it got its tasks; the last runs until ``done()`` (all outputs there), then stops cleanly.
    (Not ``until_idle``: while a killed member's session has not expired, the group may give
    the last worker only some of the partitions, and it would stop at their end.)"""
    rnd = random.Random(seed)
    for k in range(kills):
        p = Proc(cfg, tmp, f"w{k}")
        try:
            wait_for(p.assigned, 90, "an assignment")
            time.sleep(rnd.uniform(0.2, 2.5))
        finally:
            p.kill()
    last = Proc(cfg, tmp, f"final{seed}")
    try:
        wait_for(done, 240, "every output")
    except AssertionError as e:
        raise AssertionError(f"{e}: {last.log.read_text()[-3000:]}") from None
    finally:
        last.proc.send_signal(signal.SIGTERM)
        try:
            last.proc.wait(60)
        except subprocess.TimeoutExpired:
            last.kill()
    assert last.proc.returncode == 0, last.log.read_text()[-3000:]


def ids_in(out: Path, field: str) -> list[int]:
    if not out.exists():
        return []
    table = ds.dataset(out, format="parquet").to_table()
    return sorted(table.column(field).to_pylist()) if table.num_rows else []


def read_ints(bootstrap: str, topic: str) -> list[int]:
    """The values of ``topic`` (one partition) as a read_committed consumer sees them."""
    return sorted(v for _, v in read_all(bootstrap, topic, 1))


def ranges_do_not_overlap(out: Path) -> None:
    by_partition: dict[str, list[tuple[int, int]]] = {}
    for f in out.glob("*.parquet"):
        for tp, (first, last) in json.loads(pq.read_schema(f).metadata[b"streams.input"]).items():
            by_partition.setdefault(tp, []).append((first, last))
    for spans in by_partition.values():
        spans.sort()
        assert all(a[1] < b[0] for a, b in itertools.pairwise(spans)), spans


@pytest.mark.parametrize("source", ["topic", "files"])
@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_parquet_sink_publishes_each_record_once_across_sigkills(
    kafka_bootstrap: str, tmp_path: Path, guarantee: str, source: str
) -> None:
    run = uuid.uuid4().hex[:8]
    cfg: dict[str, Any] = {
        "app": f"pq-{run}",
        "bootstrap": kafka_bootstrap,
        "guarantee": guarantee,
        "state_dir": str(tmp_path / "state"),
        "input": source,
        "output": "parquet",
        "out": str(tmp_path / "out"),
        "rotate_rows": 250,
    }
    if source == "topic":
        cfg["topic"] = f"in-{run}"
        create_topics(kafka_bootstrap, [TopicSpec(cfg["topic"], 2)])
        produce(kafka_bootstrap, cfg["topic"], 2, 0, TOTAL)  # values {"id": i}
    else:
        cfg["dir"] = str(tmp_path / "in")
        write_files(tmp_path / "in", 6, TOTAL // 6)
    seed = {"at_least_once": 1, "exactly_once": 2}[guarantee] * 10 + len(source)
    out, field = tmp_path / "out", "id" if source == "topic" else "i"
    run_with_kills(cfg, tmp_path, seed, 2, lambda: len(ids_in(out, field)) >= TOTAL)
    assert ids_in(out, field) == list(range(TOTAL))  # every record, each once
    assert not list((tmp_path / "out").rglob(".*.tmp"))
    ranges_do_not_overlap(tmp_path / "out")


def test_a_file_source_resumes_mid_directory_after_sigkills_exactly_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    out_topic = f"out-{run}"
    create_topics(kafka_bootstrap, [TopicSpec(out_topic, 1)])
    write_files(tmp_path / "in", 6, TOTAL // 6)
    cfg: dict[str, Any] = {
        "app": f"files-{run}",
        "bootstrap": kafka_bootstrap,
        "guarantee": "exactly_once",
        "state_dir": str(tmp_path / "state"),
        "input": "files",
        "dir": str(tmp_path / "in"),
        "output": "topic",
        "out_topic": out_topic,
    }
    run_with_kills(
        cfg, tmp_path, 11, 2, lambda: len(read_ints(kafka_bootstrap, out_topic)) >= TOTAL
    )
    values = read_ints(kafka_bootstrap, out_topic)
    # a restart from the first file would repeat records: each once means it resumed
    assert values == list(range(TOTAL))
    # a new file after the run: the next run reads only it
    (tmp_path / "in" / "100.jsonl").write_text(
        "".join(json.dumps({"i": i}) + "\n" for i in range(TOTAL, TOTAL + 50))
    )
    run_with_kills(
        cfg, tmp_path, 12, 0, lambda: len(read_ints(kafka_bootstrap, out_topic)) >= TOTAL + 50
    )
    assert read_ints(kafka_bootstrap, out_topic) == list(range(TOTAL + 50))
