"""Nexmark q6 and q13 on bytewax, dispatched from :mod:`bench.peers.bytewax_app` (which reads
the JSONL, writes the rows and times the run).

q6: auctions and bids keyed by auction id meet in a ``stateful_map`` holding the auction (bids that
come before it wait in the same state) and its current winner, which emits each new winner
(:func:`bench.peers.common.q6_join`); re-keyed by seller, a second ``stateful_map`` holds every
auction's current winner and emits the average of the latest 11
(:func:`bench.peers.common.q6_latest_mean`): an update stream keyed by seller, whose last row per
seller is the result (the harness keeps it). q13: the side input (:mod:`bench.nexmark.side_input`)
is read into a dict when the dataflow is built; each bid looks up ``auction % 10000`` in a ``map``.
"""

from __future__ import annotations

import bytewax.operators as op
from bytewax.dataflow import Stream

from bench.nexmark import side_input
from bench.peers.common import Row, q6_join, q6_latest_mean, q13_row

QUERIES = ("q6", "q13")


def build(query: str, events: Stream[Row]) -> Stream[Row]:
    """The rows of ``query`` over the decoded events."""
    if query == "q13":
        return _q13(events)
    return _q6(events)


def _q6(events: Stream[Row]) -> Stream[Row]:
    rel = op.filter("q6-auctions-bids", events, lambda e: e["type"] in ("auction", "bid"))
    by_auction = op.key_on(
        "q6-by-auction", rel, lambda e: str(e["id"] if e["type"] == "auction" else e["auction"])
    )
    winners = op.flat_map_value(
        "q6-winners", op.stateful_map("q6-join", by_auction, q6_join), lambda ws: ws
    )
    by_seller = op.key_on(
        "q6-by-seller", op.key_rm("q6-unkey", winners), lambda w: str(w["seller"])
    )
    avg = op.stateful_map("q6-avg", by_seller, q6_latest_mean)
    return op.key_rm("q6-rows", avg)


def _q13(events: Stream[Row]) -> Stream[Row]:
    side = side_input.load(side_input.path())
    bids = op.filter("q13-bids", events, lambda e: e["type"] == "bid")

    return op.map("q13-join", bids, lambda b: q13_row(b, side[b["auction"] % side_input.ROWS]))


__all__ = ["QUERIES", "build"]
