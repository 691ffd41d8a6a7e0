"""Nexmark q10 (partitioned file output) and q12 (processing-time windows) against the DuckDB
reference (:mod:`bench.nexmark.reference_time`). q12's rows depend on processing time, so the
generic per-row test skips it; here its windows are checked exactly on the driver's clock, and
its per-bidder totals against the reference on the worker's real clock."""

import json
import os
import shutil

import pytest

import streams as st
from bench.nexmark import queries_time, reference
from bench.nexmark.generator import write_jsonl
from bench.nexmark.queries import (
    FILE_OUTPUT,
    INPUT,
    NONDETERMINISTIC,
    OUTPUT,
    QUERIES,
    run_driver,
)
from bench.nexmark.reference import NexmarkReference
from bench.nexmark.runner import run_file
from bench.peers import harness
from tests.bench.test_nexmark_peers import _need
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


# -- q12 -------------------------------------------------------------------------------------


def _bids_per_window(events, batch, tick_ms, start_ms):
    """Bids per (bidder, window) when batch i runs at wall clock ``start_ms + i * tick_ms``."""
    want: dict[tuple[int, int], int] = {}
    for i in range(0, len(events), batch):
        now = start_ms + i // batch * tick_ms
        start = now - now % queries_time.PROCTIME_WINDOW_MS
        for e in events[i : i + batch]:
            if e["type"] == "bid":
                want[(e["bidder"], start)] = want.get((e["bidder"], start), 0) + 1
    return want


@pytest.mark.parametrize("partitions", [1, 3])
def test_q12_windows_follow_the_driver_clock(data, partitions):
    """Batches of 250 events run 2.5 s of wall clock apart: four per 10 s window. Each window
    is emitted as the clock passes its end, before the input ends, and holds exactly the bids
    of the batches run in it; summed per bidder they are the reference's counts."""
    _, events, ref = data
    batch, tick, start = 250, 2_500, 1_000
    d = st.TopologyTestDriver(QUERIES["q12"](), partitions=partitions, start_time_ms=start)
    for i in range(0, len(events), batch):
        if i:
            d.advance_time(tick)
        d.pipe_many(INPUT, [(None, e, e["dateTime"]) for e in events[i : i + batch]])
    before_end = d.read_values(OUTPUT)
    d.end_of_input()
    rows = before_end + d.read_values(OUTPUT)
    got = {(r["bidder"], r["starttime"]): r["bid_count"] for r in rows}
    assert len(got) == len(rows)  # one row per (bidder, window)
    assert got == _bids_per_window(events, batch, tick, start)
    assert all(r["endtime"] - r["starttime"] == 10_000 for r in rows)
    last = start + (len(events) - 1) // batch * tick
    assert {r["starttime"] for r in before_end} == set(range(0, last - last % 10_000, 10_000))
    assert queries_time.per_bidder(rows) == reference.QUERIES["q12"](ref)


def test_q12_windows_close_on_the_clock_alone(data):
    _, events, _ = data
    d = st.TopologyTestDriver(QUERIES["q12"](), start_time_ms=0)
    d.pipe_many(INPUT, [(None, e, e["dateTime"]) for e in events[:500]])
    d.advance_time(9_999)
    assert d.read_values(OUTPUT) == []
    d.advance_time(1)
    rows = d.read_values(OUTPUT)
    assert rows and {(r["starttime"], r["endtime"]) for r in rows} == {(0, 10_000)}
    assert sum(r["bid_count"] for r in rows) == sum(e["type"] == "bid" for e in events[:500])


def test_q12_skipped_by_the_per_row_comparison():
    assert "q12" in NONDETERMINISTIC and "q12" in QUERIES


def test_q12_on_the_worker_sums_to_the_reference(data, tmp_path):
    """The embedded worker on the real wall clock: whatever the windows, the totals hold."""
    path, _, ref = data
    out = tmp_path / "q12.jsonl"
    stats = run_file("q12", str(path), str(out), partitions=2)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert stats["rows"] == len(rows) > 0
    assert all(
        r["starttime"] % 10_000 == 0 and r["endtime"] - r["starttime"] == 10_000 for r in rows
    )
    assert queries_time.per_bidder(rows) == reference.QUERIES["q12"](ref)


# -- the peer harness ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("system", "query"),
    [("ours", "q10"), ("ours", "q12"), ("bytewax", "q10"), ("bytewax", "q12"), ("pyflink", "q10")],
)
def test_harness_checks_q10_files_and_q12_totals(data, tmp_path, system, query):
    """Each system's q10 rows come from its partitioned files (``dt``/``hm`` from the
    directories); q12 is checked by its per-bidder totals."""
    path, _, ref = data
    if system != "ours":
        _need(system)
    if system == "pyflink" and shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("pyflink needs Java")
    assert query in harness.EXPRESSES[system] and query in harness.ALL_QUERIES
    if system == "ours":
        o = harness.run_ours(query, path, tmp_path, 300.0)
    else:
        run = harness.run_bytewax if system == "bytewax" else harness.run_pyflink
        o = run(query, path, EVENTS, tmp_path, 300.0)
    assert o.rows
    if query == "q10":
        assert {r["hm"] for r in o.rows} == {r["hm"] for r in reference.QUERIES["q10"](ref)}
    harness.check(o, harness.norm(reference.QUERIES[query](ref)))
    assert o.check == "ok", o.check


def test_pyflink_q12_is_reported_not_expressible():
    assert "q12" not in harness.EXPRESSES["pyflink"]
    assert "processing-time timers" in harness.NOT_EXPRESSIBLE[("pyflink", "q12")]


@pytest.mark.kafka
@pytest.mark.parametrize("query", ["q10", "q12"])
def test_harness_ours_kafka_q10_and_q12(data, kafka_bootstrap, query):
    """The worker on Kafka: q10's file rows and q12's per-bidder totals (the sentinel bids'
    rows dropped) against the reference."""
    from bench.peers import kafka_io

    path, _, ref = data
    k = harness.prepare_kafka(kafka_bootstrap, path)
    try:
        o = harness.run_kafka_peer("ours-kafka", query, k, EVENTS, 240.0)
    finally:
        kafka_io.run(kafka_io.cleanup(k.bootstrap, k.run_id, k.groups))
    harness.check(o, harness.norm(reference.QUERIES[query](ref)))
    assert o.check == "ok", o.check
