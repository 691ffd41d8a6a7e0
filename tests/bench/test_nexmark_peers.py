"""The peers' q8 (bench/peers/): their shared helpers and, where a peer's venv is installed, each
peer's output against the DuckDB reference.

The peer venvs are optional (``python -m bench nexmark compare --install-only``): a test that
needs one is skipped, with the reason, when it is missing, and fails instead when
``STREAMS_BENCH_PEERS=require`` (never a silent pass). The Kafka peers' tests are also marked
``kafka`` (a real broker, see tests/kafka_fixtures.py).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from bench.nexmark.generator import write_jsonl
from bench.nexmark.reference import NexmarkReference
from bench.peers import common, envs, harness

EVENTS = 4_000  # at 200 events/s: 20 s of event time, a few 10 s windows
RATE = 200


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    path = tmp_path_factory.mktemp("nxpeers") / "events.jsonl"
    write_jsonl(path, EVENTS, seed=5, rate_per_s=RATE)
    with NexmarkReference(str(path)) as ref:
        want = harness.norm(ref.q8())
    assert want  # the data exercises q8
    return path, want


def _need(peer: str) -> None:
    if peer == "ours-kafka":  # the project's own environment
        return
    if peer == "kafka-streams" and shutil.which("mvn") and shutil.which("java"):
        envs.kafka_streams_jar()  # built from the repo with Maven on first use (~15 s)
    ready = envs.KAFKA_STREAMS_JAR.exists() if peer == "kafka-streams" else envs.is_ready(peer)
    if ready:
        return
    reason = f"{peer} is not installed (python -m bench nexmark compare --install-only)"
    if os.environ.get("STREAMS_BENCH_PEERS") == "require":
        pytest.fail(reason + "; STREAMS_BENCH_PEERS=require", pytrace=False)
    pytest.skip(reason)


# ---------------------------------------------------------------- the shared helpers


def _fold_q8(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """q8 as a peer runs it: the helpers, one global watermark (max seen - 4 s), a window
    emitting when the watermark passes its end, late records dropped, all closing at the end."""
    open_: dict[tuple[int, int], list[Any]] = {}
    rows: list[dict[str, Any]] = []
    wm = -(2**62)
    dropped = 0
    for e in events:
        if not common.q8_relevant(e):
            continue
        ts = e["dateTime"]
        start = ts - ts % common.TUMBLE_MS
        if start + common.TUMBLE_MS <= wm:
            dropped += 1
            continue
        key = (common.q8_key(e), start)
        open_[key] = common.q8_add(open_.get(key), common.q8_slim(e))
        wm = max(wm, ts - common.OUT_OF_ORDERNESS_MS)
        for k in [k for k in open_ if k[1] + common.TUMBLE_MS <= wm]:
            rows += common.q8_rows(k[1], open_.pop(k))
    for k, acc in open_.items():
        rows += common.q8_rows(k[1], acc)
    assert dropped == 0  # the generator's lateness (<= 3 s) stays under the 4 s delay
    return rows


def test_q8_helpers_with_a_watermark_equal_the_reference(dataset):
    path, want = dataset
    events = [json.loads(line) for line in path.read_text().splitlines()]
    assert harness.norm(_fold_q8(events)) == want


def test_q8_helpers_emit_only_a_window_with_both_sides():
    person = {"type": "person", "id": 7, "name": "Ann", "dateTime": 12_000}
    auction = {"type": "auction", "seller": 7, "dateTime": 15_000}
    other = {"type": "auction", "seller": 8, "dateTime": 15_000}
    assert common.q8_rows(10_000, common.q8_add(None, person)) == []
    assert common.q8_rows(10_000, common.q8_add(None, auction)) == []
    both = common.q8_add(common.q8_add(None, auction), person)  # either order
    assert common.q8_rows(10_000, both) == [{"id": 7, "name": "Ann", "starttime": 10_000}]
    again = common.q8_add(both, auction)  # more auctions: still one row
    assert common.q8_rows(10_000, again) == [{"id": 7, "name": "Ann", "starttime": 10_000}]
    assert common.q8_key(person) == common.q8_key(auction) != common.q8_key(other)


def test_q8_lets_the_sentinels_through_but_not_the_bids():
    (sentinel, *_) = common.sentinel_events(1_000)
    bid = dict(sentinel, auction=1_005)
    assert common.q8_relevant(sentinel) and not common.q8_relevant(bid)
    assert common.q8_key(sentinel) == common.SENTINEL_AUCTION
    assert common.q8_rows(0, common.q8_add(None, sentinel)) == []
    assert "q8" in common.WINDOWED  # so the harness appends sentinels


def test_faust_q8_is_reported_not_expressible():
    assert "q8" not in harness.EXPRESSES["faust"]
    assert "watermark" in harness.NOT_EXPRESSIBLE[("faust", "q8")]
    for peer in ("ours", "bytewax", "quixstreams", "kafka-streams", "pyflink"):
        assert "q8" in harness.EXPRESSES[peer]


# ---------------------------------------------------------------- the peers themselves


@pytest.mark.parametrize("peer", ["bytewax", "pyflink"])
def test_in_process_peer_q8_equals_the_reference(peer, dataset, tmp_path):
    _need(peer)
    if peer == "pyflink" and shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("pyflink needs Java")
    path, want = dataset
    run = harness.run_bytewax if peer == "bytewax" else harness.run_pyflink
    o = run("q8", path, EVENTS, tmp_path, 300.0)
    harness.check(o, want)
    assert o.check == "ok", o.check
    assert o.stats is not None and o.stats["rows"] == len(want)
    # (a rate, or none when a PyFlink job's work is within its fixed cost's spread)
    rate = o.stats["events_per_core_s"]
    assert rate > 0 if rate is not None else o.stats.get("too_short") is True


@pytest.mark.kafka
@pytest.mark.parametrize("peer", ["ours-kafka", "quixstreams", "kafka-streams"])
def test_kafka_peer_q8_equals_the_reference(peer, dataset, kafka_bootstrap):
    _need(peer)
    from bench.peers import kafka_io

    path, want = dataset
    k = harness.prepare_kafka(kafka_bootstrap, path)
    try:
        o = harness.run_kafka_peer(peer, "q8", k, EVENTS, 240.0)
    finally:
        kafka_io.run(kafka_io.cleanup(k.bootstrap, k.run_id, k.groups))
    harness.check(o, want)
    assert o.check == "ok", o.check
    assert o.stats is not None and o.stats["events_per_core_s"] > 0
