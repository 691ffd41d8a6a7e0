"""The comparison's registry (bench/peers/harness.py) covers every Nexmark query, and the
in-process peers' join / updating queries (q3, q4, q9, q18, q19, q20: bench/peers/bytewax_joins.py,
pyflink_joins.py) equal the DuckDB reference (skipped when a peer's venv is not installed, as in
tests/bench/test_nexmark_peers.py), and the per-key steps bytewax and Quix Streams share
(bench/peers/joins_common.py)."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from bench.nexmark.generator import write_jsonl
from bench.nexmark.queries import QUERIES, UPDATING
from bench.nexmark.reference import NexmarkReference
from bench.peers import harness, joins_common
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


# ---------------------------------------------------------------- the shared steps (joins_common)


def _run(query, events, mean=False):
    """A query's step per key, as a peer runs it; the state goes through JSON (Quix's)."""
    keep, key, mapper = joins_common.STEPS[query]
    states, rows = {}, []
    for e in filter(keep, events):
        k = key(e)
        s, out = mapper(states.get(k), e)
        states[k] = json.loads(json.dumps(s))
        rows += out
    if mean:
        key, mapper = joins_common.Q4_MEAN
        return _run_rows(rows, key, mapper)
    return rows


def _run_rows(rows, key, mapper):
    states, out = {}, []
    for r in rows:
        states[key(r)], more = mapper(states.get(key(r)), r)
        out += more
    return out


def _bid(auction, price, t, bidder=1):
    return {"type": "bid", "auction": auction, "bidder": bidder, "price": price, "channel": "c",
            "url": "u", "dateTime": t, "extra": f"x{t}"}  # fmt: skip


def _auction(id_, category, t=0, expires=100):
    return {"type": "auction", "id": id_, "itemName": "i", "description": "d", "initialBid": 1,
            "reserve": 2, "dateTime": t, "expires": expires, "seller": 7, "category": category,
            "extra": "a"}  # fmt: skip


def test_join_pairs_earlier_bids_when_their_auction_comes_and_drops_unmatched():
    events = [_bid(1, 5, 10), _bid(2, 6, 11), _auction(1, 10), _auction(2, 3), _bid(1, 7, 12)]
    rows = _run("q20", events)
    assert [(r["auction"], r["price"]) for r in rows] == [(1, 5), (1, 7)]  # auction 2: cat. 3


def test_q9_keeps_the_highest_bid_in_the_auction_lifetime_earlier_on_ties():
    events = [_auction(1, 10), _bid(1, 5, 10), _bid(1, 9, 101), _bid(1, 5, 5), _bid(1, 6, 30)]
    events += [_bid(1, 6, 20, bidder=2), _bid(1, 6, 20, bidder=3)]
    rows = _run("q9", events)
    # (9 at 101: after expires; 6 at 20 from bidder 3: an equal price at an equal time)
    got = [(r["price"], r["bid_dateTime"], r["bidder"]) for r in rows]
    assert got == [(5, 10, 1), (5, 5, 1), (6, 30, 1), (6, 20, 2)]


def test_q4_averages_each_auctions_current_maximum_per_category():
    events = [_auction(1, 10), _auction(2, 10), _bid(1, 4, 1), _bid(2, 8, 1), _bid(1, 6, 2)]
    rows = _run("q4", events, mean=True)
    assert rows[-1] == {"category": 10, "final": 7.0}
    assert [r["final"] for r in rows] == [4.0, 6.0, 7.0]


def test_q19_re_emits_the_ranks_a_bid_pushes_down_and_q18_keeps_the_later_tie():
    rows = _run("q19", [_bid(1, 5, 1), _bid(1, 5, 2), _bid(1, 9, 3)])
    assert [(r["rank_number"], r["price"], r["dateTime"]) for r in rows] == [
        (1, 5, 1), (2, 5, 2), (1, 9, 3), (2, 5, 1), (3, 5, 2)
    ]  # fmt: skip
    last = _run("q18", [_bid(1, 5, 2), _bid(1, 6, 1), _bid(1, 7, 2)])
    assert [r["price"] for r in last] == [5, 7]
    assert "type" not in last[-1]


@pytest.mark.kafka
@pytest.mark.parametrize("peer", ["ours-kafka", "quixstreams", "faust"])
def test_kafka_peer_q4_equals_the_reference(peer, tmp_path_factory, kafka_bootstrap):
    """q4: two keyed steps (by auction, then by category) through the broker."""
    _need(peer)
    from bench.peers import kafka_io

    path = tmp_path_factory.mktemp("nxjoins-kafka") / "events.jsonl"
    write_jsonl(path, 4_000, seed=4, rate_per_s=500)
    with NexmarkReference(str(path)) as ref:
        want = harness.norm(ref.q4())
    assert want
    k = harness.prepare_kafka(kafka_bootstrap, path)
    try:
        o = harness.run_kafka_peer(peer, "q4", k, 4_000, 240.0)
    finally:
        kafka_io.run(kafka_io.cleanup(k.bootstrap, k.run_id, k.groups))
    harness.check(o, want)
    assert o.check == "ok", o.check
