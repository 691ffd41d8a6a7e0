"""Nexmark q3, q4, q9, q18, q19, q20 as per-key steps, shared by the peers that run them
(:mod:`bench.peers.bytewax_joins`, :mod:`bench.peers.quix_joins`); plain Python, JSON-safe state.

Each query is :data:`STEPS`: a filter of the events, a key, and a mapper ``(state, event) ->
(state, rows)`` run per key (bytewax's ``stateful_map``, a Quix Streams stateful ``apply``); q4
has a second step over the first's rows (:data:`Q4_MEAN`).

The regular joins hold the one row of the keyed side (a person by ``id`` for q3; an auction by
``id`` for q4, q9 and q20; ``False`` when no row of the other side can match it) and the rows of
the other side that came before it, which are paired, in arrival order, when it comes
(:func:`join`). The updating queries emit upserts, whose last row per key is the result (the
harness keeps it):

* q3: one row per matching auction (keyed by ``id``), once both are there;
* q4: each auction's highest price within ``[dateTime, expires]``; when it rises the change
  ``(category, old, new)`` goes to a per-category ``[sum, count]`` that emits the average
  (a float, as the reference's), so each auction counts once, with its current maximum;
* q9: each auction's winning bid (highest price; on equal prices the earlier ``dateTime``,
  then the earlier arrival), emitted when it changes (keyed by ``id``);
* q18: the last bid per ``(bidder, auction)`` by ``dateTime`` (a later arrival with the same
  time replaces, as Flink's row-time deduplication);
* q19: the top 10 bids per auction by price (equal prices in arrival order); a bid entering at
  rank r re-emits ranks r..10 (keyed by ``auction, rank_number``), as Flink's Top-N does.

q20 is append-only: each bid of a category-10 auction gives one row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.peers.common import Row

QUERIES = ("q3", "q4", "q9", "q18", "q19", "q20")
CATEGORY = 10
STATES = ("OR", "ID", "CA")
TOP_N = 10
BID_FIELDS = ("auction", "bidder", "price", "channel", "url", "dateTime", "extra")
AUCTION_FIELDS = (
    "id",
    "itemName",
    "description",
    "initialBid",
    "reserve",
    "dateTime",
    "expires",
    "seller",
    "category",
    "extra",
)

Pair = Callable[[Any, Row, list[Row]], Any]
State = list[Any]  # [the keyed side's state (None: not there yet), rows waiting for it]


def join(
    keyed: str, prepare: Callable[[Row], Any], pair: Pair
) -> Callable[[State | None, Row], tuple[State, list[Row]]]:
    """A ``stateful_map`` mapper joining the one ``keyed``-type row per key (``prepare(row)``:
    its state, ``False`` to drop what pairs with it) with the other rows; ``pair(state, row,
    out)`` appends the rows one pair gives to ``out`` and returns the new state."""

    def mapper(state: State | None, e: Row) -> tuple[State, list[Row]]:
        s = state or [None, []]
        out: list[Row] = []
        if e["type"] == keyed:
            a = prepare(e)
            waiting, s[1] = s[1], []
            if a is not False:
                for b in waiting:
                    a = pair(a, b, out)
            s[0] = a
        elif s[0] is None:
            s[1].append(e)
        elif s[0] is not False:
            s[0] = pair(s[0], e, out)
        return s, out

    return mapper


def bid_or_auction(e: Row) -> bool:
    return e["type"] in ("bid", "auction")


def auction_key(e: Row) -> Any:
    return e["id"] if e["type"] == "auction" else e["auction"]


# ---------------------------------------------------------------- q3


def q3_rel(e: Row) -> bool:
    return e["type"] == "person" or (e["type"] == "auction" and e["category"] == CATEGORY)


def q3_person(p: Row) -> Row | bool:
    return (
        {"name": p["name"], "city": p["city"], "state": p["state"]}
        if p["state"] in STATES
        else False
    )


def q3_pair(p: Row, a: Row, out: list[Row]) -> Row:
    out.append({**p, "id": a["id"]})
    return p


# ---------------------------------------------------------------- q4


def q4_auction(a: Row) -> list[Any]:
    return [a["dateTime"], a["expires"], a["category"], None]


def q4_pair(a: list[Any], b: Row, out: list[Row]) -> list[Any]:
    start, expires, category, best = a
    if start <= b["dateTime"] <= expires and (best is None or b["price"] > best):
        out.append({"category": category, "old": best, "new": b["price"]})
        return [start, expires, category, b["price"]]
    return a


def q4_mean(acc: list[int] | None, d: Row) -> tuple[list[int], list[Row]]:
    """q4's per-category ``[sum, count]`` of the auctions' current maxima; ``d``'s ``new``
    replaces ``old`` (``None``: a new auction). Returns it and the average's row."""
    s, n = acc or [0, 0]
    if d["old"] is None:
        s, n = s + d["new"], n + 1
    else:
        s += d["new"] - d["old"]
    return [s, n], [{"category": d["category"], "final": s / n}]


# ---------------------------------------------------------------- q9


def q9_auction(a: Row) -> list[Any]:
    return [{f: a[f] for f in AUCTION_FIELDS}, None]


def q9_pair(s: list[Any], b: Row, out: list[Row]) -> list[Any]:
    a, best = s
    t, price = b["dateTime"], b["price"]
    if not a["dateTime"] <= t <= a["expires"]:
        return s
    if best is not None and (
        price < best["price"] or (price == best["price"] and t >= best["bid_dateTime"])
    ):
        return s
    row = {**a, "auction": b["auction"], "bidder": b["bidder"], "price": price}
    row |= {"bid_dateTime": t, "bid_extra": b["extra"]}
    out.append(row)
    return [a, row]


# ---------------------------------------------------------------- q18, q19


def q18_last(last: Row | None, b: Row) -> tuple[Row, list[Row]]:
    """q18: the latest bid (``dateTime``; on a tie the later arrival) and the rows it emits."""
    if last is not None and b["dateTime"] < last["dateTime"]:
        return last, []
    row = {f: b[f] for f in BID_FIELDS}
    return row, [row]


def q19_top(top: list[Row] | None, b: Row) -> tuple[list[Row], list[Row]]:
    """q19: the top 10 by price (equal prices in arrival order) and the ranks this bid
    changes, each a row with its ``rank_number``."""
    top = top or []
    i = len(top)
    while i and top[i - 1]["price"] < b["price"]:
        i -= 1
    if i >= TOP_N:
        return top, []
    top.insert(i, {f: b[f] for f in BID_FIELDS})
    del top[TOP_N:]
    return top, [{**top[r], "rank_number": r + 1} for r in range(i, len(top))]


# ---------------------------------------------------------------- q20


def q20_auction(a: Row) -> Row | bool:
    return a if a["category"] == CATEGORY else False


def q20_pair(a: Row, b: Row, out: list[Row]) -> Row:
    out.append(
        {
            "auction": b["auction"],
            "bidder": b["bidder"],
            "price": b["price"],
            "channel": b["channel"],
            "url": b["url"],
            "bid_dateTime": b["dateTime"],
            "bid_extra": b["extra"],
            "itemName": a["itemName"],
            "description": a["description"],
            "initialBid": a["initialBid"],
            "reserve": a["reserve"],
            "auction_dateTime": a["dateTime"],
            "expires": a["expires"],
            "seller": a["seller"],
            "category": a["category"],
            "auction_extra": a["extra"],
        }
    )
    return a


def is_bid(e: Row) -> bool:
    return e["type"] == "bid"


def q3_key(e: Row) -> str:
    return str(e["id"] if e["type"] == "person" else e["seller"])


def by_auction(e: Row) -> str:
    return str(auction_key(e))


Mapper = Callable[[Any, Row], tuple[Any, list[Row]]]
Step = tuple[Callable[[Row], bool], Callable[[Row], str], Mapper]
STEPS: dict[str, Step] = {
    "q3": (q3_rel, q3_key, join("person", q3_person, q3_pair)),
    "q4": (bid_or_auction, by_auction, join("auction", q4_auction, q4_pair)),
    "q9": (bid_or_auction, by_auction, join("auction", q9_auction, q9_pair)),
    "q18": (is_bid, lambda b: f"{b['bidder']},{b['auction']}", q18_last),
    "q19": (is_bid, lambda b: str(b["auction"]), q19_top),
    "q20": (bid_or_auction, by_auction, join("auction", q20_auction, q20_pair)),
}
Q4_MEAN: tuple[Callable[[Row], str], Mapper] = (lambda d: str(d["category"]), q4_mean)
"""q4's second step: the first's changes keyed by category, averaged."""


__all__ = ["Q4_MEAN", "QUERIES", "STEPS", "join", "q4_mean", "q18_last", "q19_top"]
