"""Nexmark q10 (partitioned file output) and q12 (processing-time windows) against the DuckDB
reference (:mod:`bench.nexmark.reference_time`)."""

import json
import os

import pytest

from bench.nexmark import queries_time, reference
from bench.nexmark.generator import write_jsonl
from bench.nexmark.queries import FILE_OUTPUT, run_driver
from bench.nexmark.reference import NexmarkReference
from bench.nexmark.runner import run_file
from tests.bench.test_nexmark_queries import norm

# 20 events/s of event time: 3,000 events span 150 s, so the bids fall in several ``hm``
# partitions (minutes)
EVENTS, RATE = 3_000, 20


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("nx-time") / "events.jsonl"
    write_jsonl(path, EVENTS, seed=5, rate_per_s=RATE)
    events = [json.loads(line) for line in path.read_text().splitlines()]
    with NexmarkReference(str(path)) as ref:
        yield path, events, ref


def test_q10_reference_formats_dt_and_hm_in_utc(data):
    _, events, ref = data
    rows = reference.QUERIES["q10"](ref)
    bids = [e for e in events if e["type"] == "bid"]
    assert [r["dateTime"] for r in rows] == [b["dateTime"] for b in bids]
    # the generator starts at 1,700,000,000 s = 2023-11-14 22:13:20 UTC; 150 s stay in the hour
    for r in rows:
        since_22h = r["dateTime"] // 1000 - 1_700_000_000 + 13 * 60 + 20
        assert (r["dt"], r["hm"]) == ("2023-11-14", f"22:{since_22h // 60:02d}")
    assert len({r["hm"] for r in rows}) >= 3


@pytest.mark.parametrize("partitions", [1, 2])
def test_q10_files_equal_the_reference(data, partitions):
    """Every row read back from the files, with the dt/hm of its directory, is a reference row."""
    _, events, ref = data
    got = run_driver("q10", events, partitions=partitions)
    assert "q10" in FILE_OUTPUT
    assert norm(got) == norm(reference.QUERIES["q10"](ref))


def test_q10_writes_hive_partition_directories(data, tmp_path):
    _, events, ref = data
    want = reference.QUERIES["q10"](ref)
    with queries_time.output_dir(tmp_path):
        from bench.nexmark.queries import _drive

        _drive("q10", events, 1, 500)
    dirs = sorted(
        os.path.relpath(root, tmp_path)
        for root, _, files in os.walk(tmp_path)
        if any(f.endswith(".parquet") and not f.startswith(".") for f in files)
    )
    assert dirs == sorted({f"dt={r['dt']}/hm={r['hm']}" for r in want})


@pytest.mark.parametrize("mode", ["row", "columnar"])
def test_q10_runner_writes_the_rows_back_as_jsonl(data, tmp_path, mode):
    path, _, ref = data
    out = tmp_path / "q10.jsonl"
    stats = run_file("q10", str(path), str(out), mode=mode)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    want = reference.QUERIES["q10"](ref)
    assert stats["sink"] == "parquet" and stats["rows"] == len(want)
    assert norm(rows) == norm(want)
