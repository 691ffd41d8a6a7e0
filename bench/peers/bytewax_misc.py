"""Nexmark q6 and q13 on bytewax, dispatched from :mod:`bench.peers.bytewax_app` (which reads
the JSONL, writes the rows and times the run).

q6: auctions and bids keyed by auction id meet in a ``stateful_map`` holding the auction (bids
that come before it wait in the same state) and its current winner (the highest bid within
``[dateTime, expires]``; on equal prices the earlier bid, then the earlier arrival), which emits
each new winner; re-keyed by seller, a second ``stateful_map`` holds every auction's current
winner and emits the average of the latest 11 (by the winner's ``dateTime``, then the auction
id): an update stream keyed by seller, whose last row per seller is the result (the harness
keeps it). q13: the side input (:mod:`bench.nexmark.side_input`) is read into a dict when the
dataflow is built; each bid looks up ``auction % 10000`` in a ``map``.
"""

from __future__ import annotations

import heapq
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Stream

from bench.nexmark import side_input
from bench.peers.common import Row, q13_row

QUERIES = ("q6", "q13")
Q6_LAST = 11  # the SQL's ROWS BETWEEN 10 PRECEDING AND CURRENT ROW


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
        "q6-winners", op.stateful_map("q6-join", by_auction, _q6_join), lambda ws: ws
    )
    by_seller = op.key_on("q6-by-seller", op.key_rm("q6-unkey", winners), lambda w: str(w[0]))
    avg = op.stateful_map("q6-avg", by_seller, _q6_latest_mean)
    return op.key_rm("q6-rows", avg)


def _q6_join(state: dict[str, Any] | None, e: Row) -> tuple[dict[str, Any], list[Any]]:
    """State: ``auction`` (``[start, expires, seller, best price, best time]``) and ``pending``
    bids; emits the winners ``(seller, auction, price, dateTime)`` this event makes."""
    s = state or {"auction": None, "pending": []}
    if e["type"] == "auction":
        s["auction"] = [e["dateTime"], e["expires"], e["seller"], None, None]
        bids, s["pending"] = s["pending"], []
    elif s["auction"] is None:
        s["pending"].append(e)
        return s, []
    else:
        bids = [e]
    out = []
    a = s["auction"]
    for b in bids:
        t, price = b["dateTime"], b["price"]
        if not a[0] <= t <= a[1]:
            continue
        if a[3] is not None and (price < a[3] or (price == a[3] and t >= a[4])):
            continue
        a[3], a[4] = price, t
        out.append((a[2], b["auction"], price, t))
    return s, out


def _q6_latest_mean(
    won: dict[int, tuple[int, int]] | None, w: tuple[int, int, int, int]
) -> tuple[dict[int, tuple[int, int]], Row]:
    won = won or {}
    seller, auction, price, t = w
    won[auction] = (t, price)
    latest = heapq.nlargest(Q6_LAST, won.items(), key=lambda kv: (kv[1][0], kv[0]))
    return won, {"seller": seller, "avg_price": sum(p for _, (_, p) in latest) / len(latest)}


def _q13(events: Stream[Row]) -> Stream[Row]:
    side = side_input.load(side_input.path())
    bids = op.filter("q13-bids", events, lambda e: e["type"] == "bid")

    return op.map("q13-join", bids, lambda b: q13_row(b, side[b["auction"] % side_input.ROWS]))


__all__ = ["QUERIES", "build"]
