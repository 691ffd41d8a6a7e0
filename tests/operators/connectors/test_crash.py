"""Crashes at random points of the commit, through the driver: a file source feeding the
Parquet sink publishes every input record exactly once, whatever the crash points (the
source's position commits after the outputs; the sink's fence skips what it already holds)."""

from __future__ import annotations

import itertools
import json
import os
import random
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import streams as st
from operators.connectors.parquet import ParquetWriter
from streams.connectors import JsonLinesSource
from streams.runtime import driver as driver_mod
from streams.runtime.task import BrokerCollector
from streams.testing import TopologyTestDriver


class Crash(Exception):
    """The process dies here."""


POINTS = [
    "after-prepare",
    "mid-changelogs",
    "after-outputs-flush",
    "after-positions-flush",
    "publish",
    "mid-publish",
]


def arm(monkeypatch: pytest.MonkeyPatch, point: str) -> None:
    """Make the next commit die at ``point``."""
    if point == "after-prepare":  # the sink staged its files; nothing sent yet
        real = ParquetWriter.prepare

        def prepare(self: ParquetWriter, *a: Any) -> None:
            real(self, *a)
            raise Crash(point)

        monkeypatch.setattr(ParquetWriter, "prepare", prepare)
    elif point == "mid-changelogs":  # dies before the sink's state reaches its changelog
        real_send = BrokerCollector.send_batch

        def send_batch(self: BrokerCollector, topic: str, *a: Any) -> None:
            if topic == "crashy-parquet-out-changelog":
                raise Crash(point)
            real_send(self, topic, *a)

        monkeypatch.setattr(BrokerCollector, "send_batch", send_batch)
    elif point in ("after-outputs-flush", "after-positions-flush"):
        calls: list[int] = []
        n = 1 if point == "after-outputs-flush" else 2

        async def flush(self: Any) -> None:
            calls.append(1)
            if len(calls) == n:
                raise Crash(point)  # (everything sent so far is durable: the embedded log)

        monkeypatch.setattr(driver_mod._DriverIO, "flush", flush)
    elif point == "publish":  # the commit is durable, no file renamed
        monkeypatch.setattr(
            ParquetWriter, "publish", lambda self: (_ for _ in ()).throw(Crash(point))
        )
    elif point == "mid-publish":
        real_replace = os.replace
        renamed: list[Any] = []

        def replace(src: Any, dst: Any) -> None:
            if str(dst).endswith(".parquet"):
                renamed.append(dst)
                if len(renamed) == 2:
                    raise Crash(point)
            real_replace(src, dst)

        monkeypatch.setattr("operators.connectors.parquet.os.replace", replace)
    else:
        raise AssertionError(point)


def published(path: Path) -> list[int]:
    if not path.exists():
        return []
    return sorted(ds.dataset(path, format="parquet").to_table().column("i").to_pylist())


@pytest.mark.parametrize("seed", range(6))
def test_random_crashes_publish_each_file_record_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    rnd = random.Random(seed)
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    total = 0
    for k in range(5):
        n = rnd.randint(20, 60)
        (src / f"{k:03d}.jsonl").write_text(
            "".join(json.dumps({"i": i}) + "\n" for i in range(total, total + n))
        )
        total += n
    t = st.Topology("crashy")
    t.source_from(JsonLinesSource(src), name="files").to_parquet(
        out, rotate_rows=rnd.choice([None, 25])
    )
    d = TopologyTestDriver(t, auto_commit=False)
    crashes = 0
    while True:
        feed = d.feeds[0]
        for _ in range(rnd.randint(1, 4)):
            batch = feed.poll(rnd.randint(5, 30))
            if batch is None:
                break
            feed.run(batch)
            d._pump()
        if feed.exhausted and crashes >= 4:
            break
        if rnd.random() < 0.6:
            arm(monkeypatch, rnd.choice(POINTS))
            try:
                d.commit()
            except Crash:
                crashes += 1
            monkeypatch.undo()
            d.crash()
            d.restart()
        else:
            d.commit()
    d.end_of_input()
    d.commit()
    assert published(out) == list(range(total))  # every record, each once
    assert not list(out.rglob(".*.tmp"))
    # the files' input ranges follow each other and never overlap
    ranges = sorted(
        tuple(json.loads(pq.read_schema(f).metadata[b"streams.input"])["crashy-files-source:0"])
        for f in out.glob("*.parquet")
    )
    assert all(a[1] < b[0] for a, b in itertools.pairwise(ranges))
