"""The comparison's registry (bench/peers/harness.py) covers every Nexmark query, and the
in-process peers' join / updating queries (q3, q4, q9, q18, q19, q20: bench/peers/bytewax_joins.py,
pyflink_joins.py) equal the DuckDB reference (skipped when a peer's venv is not installed, as in
tests/bench/test_nexmark_peers.py)."""

from __future__ import annotations

import os
import shutil

import pytest

from bench.nexmark.generator import write_jsonl
from bench.nexmark.queries import QUERIES, UPDATING
from bench.nexmark.reference import NexmarkReference
from bench.peers import harness
from tests.bench.test_nexmark_peers import _need

EVENTS = 20_000


def test_every_query_is_compared_or_reported_not_expressible():
    assert set(QUERIES) <= set(harness.ALL_QUERIES)
    for system in ("ours", *harness.PEERS):
        for q in harness.ALL_QUERIES:
            expressed = q in harness.EXPRESSES[system]
            assert expressed != ((system, q) in harness.NOT_EXPRESSIBLE), (system, q)
    assert set(harness.EXPRESSES["ours"]) == set(harness.ALL_QUERIES)


def test_every_updating_query_is_compared_by_its_final_row_per_key():
    assert set(UPDATING) <= set(harness.FINAL_BY)
    rows = [{"auction": 1, "rank_number": 1, "price": 5}, {"auction": 1, "rank_number": 2}]
    rows.append({"auction": 1, "rank_number": 1, "price": 7})
    assert harness.final("q19", rows) == [rows[2], rows[1]]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("nxjoins") / "events.jsonl"
    write_jsonl(path, EVENTS, seed=4, rate_per_s=500)
    with NexmarkReference(str(path)) as ref:
        yield path, ref


@pytest.mark.parametrize(
    ("peer", "query"),
    [("bytewax", q) for q in harness.JOIN_QUERIES] + [("pyflink", "q9")],
)
def test_in_process_peer_equals_the_reference(data, tmp_path, peer, query):
    _need(peer)
    if peer == "pyflink" and shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("pyflink needs Java")
    path, ref = data
    want = harness.norm(getattr(ref, query)())
    assert want  # the data exercises the query
    run = harness.run_bytewax if peer == "bytewax" else harness.run_pyflink
    o = run(query, path, EVENTS, tmp_path, 300.0)
    harness.check(o, want)
    assert o.check == "ok", o.check
    assert o.stats is not None
    if peer == "bytewax" and query in ("q9", "q18", "q19"):  # upserts, more than the result
        assert o.stats["rows"] > len(want)
