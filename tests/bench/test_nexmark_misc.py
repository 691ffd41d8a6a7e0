"""Nexmark q6 and q13 (bench/nexmark/queries_misc.py) against the DuckDB reference, on the
embedded runtime in each execution mode (tests/bench/test_nexmark_queries.py also runs them
with the test driver, 1 and 3 partitions), and the in-process peers' q6, q11 and q13 (skipped
when a peer's venv is not installed, as in tests/bench/test_nexmark_peers.py)."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from bench.nexmark import side_input
from bench.nexmark.generator import write_jsonl
from bench.nexmark.queries import UPDATING, run_driver
from bench.nexmark.reference import NexmarkReference
from bench.nexmark.runner import run_file
from bench.peers import common, harness
from bench.peers.harness import norm
from tests.bench.test_nexmark_peers import _need

EVENTS = 20_000


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("nxmisc") / "events.jsonl"
    write_jsonl(path, EVENTS, seed=2, rate_per_s=500)
    with NexmarkReference(str(path)) as ref:
        yield path, ref


def _final(rows, key):
    last = {}
    for r in rows:
        last[r[key]] = r
    return list(last.values())


@pytest.mark.parametrize("mode", ["row", "columnar", "auto"])
@pytest.mark.parametrize("query", ["q6", "q13"])
def test_query_on_the_runtime_equals_the_reference(data, tmp_path, query, mode):
    path, ref = data
    out = tmp_path / "rows.jsonl"
    stats = run_file(query, str(path), str(out), mode=mode)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    if query in UPDATING:  # upserts keyed by seller, in order on one partition
        rows = _final(rows, "seller")
    want = getattr(ref, query)()
    assert want
    assert norm(rows) == norm(want)
    assert stats["events"] == EVENTS


def test_q6_averages_the_latest_11_auctions_of_a_seller(data):
    """The data has sellers with more than 11 won auctions, and the 11-row frame (the SQL's
    ``10 PRECEDING AND CURRENT ROW``) gives other averages than the last 10 would."""
    _, ref = data
    winners = ref.sql(
        """SELECT A.seller, A.id, max(B.price) AS price, arg_min(B."dateTime", -B.price) AS t
           FROM auction A JOIN bid B ON A.id = B.auction
           WHERE B."dateTime" BETWEEN A."dateTime" AND A.expires GROUP BY A.seller, A.id"""
    )
    by_seller: dict[int, list[tuple[int, int, int]]] = {}
    for w in winners:
        by_seller.setdefault(w["seller"], []).append((w["t"], w["id"], w["price"]))
    got = {r["seller"]: r["avg_price"] for r in ref.q6()}
    busy = [s for s, ws in by_seller.items() if len(ws) > 11]
    assert busy
    for s in busy:
        latest = [p for _, _, p in sorted(by_seller[s])[-11:]]
        assert got[s] == pytest.approx(sum(latest) / 11)
        assert got[s] != pytest.approx(sum(latest[1:]) / 10)


def test_q13_joins_every_bid_with_its_side_row(data):
    _, ref = data
    rows = ref.q13()
    assert len(rows) == ref.counts()["bid"]
    assert all(r["value"] == str(r["auction"] % side_input.ROWS) for r in rows)


def test_q13_looks_up_the_auction_modulo_10000(tmp_path):
    """(The generated data has auction ids below 10,000 up to ~450K events.)"""
    bids = [
        {"type": "bid", "auction": a, "bidder": 1, "price": 2, "channel": "c", "url": "u",
         "dateTime": 1_000 + i, "extra": ""}
        for i, a in enumerate([12_345, 20_000, 7])
    ]  # fmt: skip
    path = tmp_path / "bids.jsonl"
    path.write_text("".join(json.dumps(b) + "\n" for b in bids))
    with NexmarkReference(str(path)) as ref:
        want = ref.q13()
    assert [r["value"] for r in want] == ["2345", "0", "7"]
    assert norm(run_driver("q13", bids)) == norm(want)


def test_side_input_is_the_nexmark_generators(tmp_path):
    p = side_input.write(tmp_path / "side.csv", rows=3)
    assert p.read_text() == "0,0\n1,1\n2,2\n"
    assert side_input.load(p) == {0: "0", 1: "1", 2: "2"}


# ---------------------------------------------------------------- the peers (bench/peers/)


def test_harness_keeps_the_last_row_per_seller_of_q6():
    rows = [{"seller": 1, "avg_price": 1.0}, {"seller": 2, "avg_price": 5.0}]
    rows.append({"seller": 1, "avg_price": 3.0})
    assert harness.final("q6", rows) == [{"seller": 1, "avg_price": 3.0}, rows[1]]
    assert harness.final("q13", rows) == rows


def test_peer_q6_helpers_join_wait_and_average_the_latest_11():
    """bench.peers.common's q6 steps (bytewax, quixstreams): a bid before its auction waits, a
    bid outside the auction's lifetime does not count, an equal price does not replace the
    winner; the state survives a JSON round trip (Quix keeps it as JSON)."""

    def bid(price, t):
        return {"type": "bid", "auction": 7, "price": price, "dateTime": t}

    s, out = common.q6_join(None, bid(5, 10))
    assert out == []
    auction = {"type": "auction", "id": 7, "seller": 3, "dateTime": 0, "expires": 100}
    s, out = common.q6_join(json.loads(json.dumps(s)), auction)
    assert out == [{"seller": 3, "auction": 7, "price": 5, "dateTime": 10}]
    for b in (bid(5, 20), bid(9, 101), bid(4, 30)):
        s, out = common.q6_join(s, b)
        assert out == []
    won = None
    for a in range(13):  # auction a won at price a, time 100 - a: the latest are the cheapest
        won, row = common.q6_latest_mean(
            won, {"seller": 3, "auction": a, "price": a, "dateTime": 100 - a}
        )
        won = json.loads(json.dumps(won))
    assert row == {"seller": 3, "avg_price": sum(range(11)) / 11}


@pytest.mark.parametrize(
    ("peer", "query"),
    [("bytewax", "q6"), ("bytewax", "q11"), ("bytewax", "q13"), ("pyflink", "q6")],
)
def test_in_process_peer_equals_the_reference(data, tmp_path, peer, query):
    _need(peer)
    if peer == "pyflink" and shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("pyflink needs Java")
    path, ref = data
    want = harness.norm(getattr(ref, query)(**harness.REFERENCE_ARGS.get((peer, query), {})))
    run = harness.run_bytewax if peer == "bytewax" else harness.run_pyflink
    o = run(query, path, EVENTS, tmp_path, 300.0)
    harness.check(o, want)
    assert o.check == "ok", o.check
