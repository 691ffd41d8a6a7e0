"""The Nexmark queries that join people, auctions and bids: q3, q4, q8, q9, q20.

q3 is a foreign-key table join (auction -> its seller). q8 joins within tumbling windows, as
one windowed aggregation over both sides. q4, q9 and q20 join every bid with its auction with
no time bound (a regular SQL join), as a processor over both streams keyed by the auction id:
a bid that arrives before its auction (the generator makes bids for auctions a few ids ahead)
waits in a store until the auction comes. Auction ids are unique (the auction side is keyed by
its primary key), so once an auction is there its bids need no buffering.

Updating queries (q3, q4, q9) write upserts keyed by the result's key; their result is the
final value per key (see :func:`bench.nexmark.queries.final_rows`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streams as st
from bench.nexmark.base import OUTPUT, of_type, source
from streams import agg, windows
from streams.core.serde import JSON

Row = dict[str, Any]
CATEGORY = 10
STATES = ("OR", "ID", "CA")
TUMBLE_MS = 10_000

Pair = Callable[[st.ProcessorContext, Any, Row], Any]


class BidAuctionJoin:
    """A processor joining bids (keyed by ``auction``) with their auction (keyed by ``id``).

    ``prepare(auction)`` gives the state kept per auction (``False``: no bid of it can match,
    so its bids are dropped); ``pair(ctx, state, bid)`` handles one joined pair (it may
    ``ctx.forward``) and returns the new state, or ``None`` to keep it. Bids that arrive before
    their auction wait in the ``{name}-pending`` store and are paired, in arrival order, when it
    comes.
    """

    def __init__(self, name: str, prepare: Callable[[Row], Any], pair: Pair) -> None:
        self.name = name
        self.auctions, self.pending = f"{name}-auctions", f"{name}-pending"
        self.prepare, self.pair = prepare, pair

    def apply(self, src: st.Stream) -> st.Stream:
        bids = of_type(src, "bid").key_by("auction", name=f"{self.name}-bid-key")
        auctions = of_type(src, "auction").key_by("id", name=f"{self.name}-auction-key")
        return bids.merge(auctions, name=f"{self.name}-both").process(
            self.name, self, stores=[self.auctions, self.pending]
        )

    def __call__(self, ctx: st.ProcessorContext) -> None:
        v, key = ctx.value, ctx.key
        auctions = ctx.store(self.auctions)
        if v.type == "bid":
            state = auctions.get(key)
            if state is None:
                pending = ctx.store(self.pending)
                waiting = pending.get(key) or []
                waiting.append(v)
                pending.put(key, waiting)
            elif state is not False:
                new = self.pair(ctx, state, v)
                if new is not None:
                    auctions.put(key, new)
            return
        state = self.prepare(v)
        pending = ctx.store(self.pending)
        waiting = pending.get(key)
        if waiting is not None:
            pending.delete(key)
            if state is not False:
                for b in waiting:
                    new = self.pair(ctx, state, b)
                    if new is not None:
                        state = new
        auctions.put(key, state)


def q3() -> st.Topology:
    """Local item suggestion: sellers in OR/ID/CA of auctions in category 10 (regular join).

    A foreign-key join of the auctions table (by id) with the people table (by id) on
    ``seller``. Updating: upserts keyed by the auction id; the result is the final value per
    key (people and auctions never change, so each auction gets one row once both are there).
    """
    t, src = source("q3")
    people = (
        of_type(src, "person")
        .filter(lambda p: p.state in STATES, name="q3-local")
        .key_by("id", name="q3-person-key")
        .to_table("q3-people")
    )
    auctions = (
        of_type(src, "auction")
        .filter(st.col("category") == CATEGORY, name="q3-category")
        .key_by("id", name="q3-auction-key")
        .to_table("q3-auctions")
    )
    auctions.join_on(people, "seller", _q3_row, name="q3-join").changes().to(OUTPUT, key=JSON)
    return t


def _q3_row(a: Row, p: Row) -> Row:
    return {"name": p.name, "city": p.city, "state": p.state, "id": a.id}


def q4() -> st.Topology:
    """Average closing price per category: the highest bid of each auction within
    ``[auction.dateTime, auction.expires]``, averaged per category (regular join).

    The join keeps each auction's highest price so far and, when it rises, sends the change
    ``(category, old, new)`` to a per-category sum and count, so the average counts each
    auction once, with its current maximum (the retraction Flink's updating aggregate does).
    Updating: upserts keyed by ``category``; the result is the final value per key. The
    average is a float (Flink's AVG over BIGINT truncates).
    """
    t, src = source("q4")
    (
        BidAuctionJoin("q4-join", _q4_auction, _q4_pair)
        .apply(src)
        .key_by(lambda d: d[0], name="q4-by-category")
        .aggregate("q4-avg", _delta_mean())
        .to(OUTPUT, key=JSON)
    )
    return t


def _q4_auction(a: Row) -> list[Any]:
    return [a.dateTime, a.expires, a.category, None]


def _q4_pair(ctx: st.ProcessorContext, a: list[Any], b: Row) -> list[Any] | None:
    start, expires, category, best = a
    price = b.price
    if start <= b.dateTime <= expires and (best is None or price > best):
        ctx.forward(ctx.key, (category, best, price))
        return [start, expires, category, price]
    return None


def _delta_mean() -> agg.Agg:
    """Mean over ``(group, old, new)`` changes: ``new`` replaces ``old`` (``None``: a new
    member)."""

    def add(acc: tuple[Any, int, int], d: tuple[Any, int | None, int]) -> tuple[Any, int, int]:
        group, old, new = d
        if old is None:
            return (group, acc[1] + new, acc[2] + 1)
        return (group, acc[1] + new - old, acc[2])

    return agg.custom(
        init=lambda: (None, 0, 0),
        add=add,
        result=lambda acc: {"category": acc[0], "final": acc[1] / acc[2]},
        name="delta_mean",
    )


def q8() -> st.Topology:
    """New users: people who opened an auction in the same tumbling 10 s window they joined.

    People (by ``id``) and auctions (by ``seller``) go through one windowed aggregation that
    remembers the person's name and whether an auction was seen; each closed window with both
    gives one row (as the SQL's GROUP BY on each side).
    """
    t, src = source("q8")
    people = of_type(src, "person").key_by("id", name="q8-person-key").select("type", "name")
    sellers = of_type(src, "auction").key_by("seller", name="q8-seller-key").select("type")
    (
        people.merge(sellers, name="q8-both")
        .window("q8-window", windows.tumbling(ms=TUMBLE_MS))
        .aggregate(seen=_q8_seen())
        .flat_map(_q8_rows, name="q8-rows")
        .to(OUTPUT)
    )
    return t


def _q8_seen() -> agg.Agg:
    def add(acc: tuple[str | None, bool], v: Row) -> tuple[str | None, bool]:
        return (v["name"], acc[1]) if v["type"] == "person" else (acc[0], True)

    return agg.custom(init=lambda: (None, False), add=add, name="person_and_auction")


def _q8_rows(person: Any, v: Row) -> list[tuple[None, Row]]:
    name, sold = v["seen"]
    if name is None or not sold:
        return []
    return [(None, {"id": person, "name": name, "starttime": v["window_start"]})]


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


def q9() -> st.Topology:
    """Winning bids: per auction, the highest bid within ``[dateTime, expires]`` (earliest on
    equal prices; then the earlier arrival), with the auction's fields (regular join).

    Updating: upserts keyed by the auction id; the result is the final value per key.
    """
    t, src = source("q9")
    BidAuctionJoin("q9-join", _q9_auction, _q9_pair).apply(src).to(OUTPUT, key=JSON)
    return t


def _q9_auction(a: Row) -> tuple[Row, Row | None]:
    return ({f: getattr(a, f) for f in AUCTION_FIELDS}, None)


def _q9_pair(ctx: st.ProcessorContext, s: tuple[Row, Row | None], b: Row) -> tuple[Row, Row] | None:
    a, best = s
    t, price = b.dateTime, b.price
    if not a["dateTime"] <= t <= a["expires"]:
        return None
    if best is not None and (
        price < best["price"] or (price == best["price"] and t >= best["bid_dateTime"])
    ):
        return None
    row = {
        **a,
        "auction": b.auction,
        "bidder": b.bidder,
        "price": price,
        "bid_dateTime": t,
        "bid_extra": b.extra,
    }
    ctx.forward(ctx.key, row)
    return (a, row)


def q20() -> st.Topology:
    """Bids expanded with their auction, for auctions of category 10 (regular join).

    Append-only: each bid of a category-10 auction gives one row, once both are there.
    """
    t, src = source("q20")
    BidAuctionJoin("q20-join", _q20_auction, _q20_pair).apply(src).to(OUTPUT)
    return t


def _q20_auction(a: Row) -> Row | bool:
    return a if a.category == CATEGORY else False


def _q20_pair(ctx: st.ProcessorContext, a: Row, b: Row) -> None:
    ctx.forward(
        None,
        {
            "auction": b.auction,
            "bidder": b.bidder,
            "price": b.price,
            "channel": b.channel,
            "url": b.url,
            "bid_dateTime": b.dateTime,
            "bid_extra": b.extra,
            "itemName": a.itemName,
            "description": a.description,
            "initialBid": a.initialBid,
            "reserve": a.reserve,
            "auction_dateTime": a.dateTime,
            "expires": a.expires,
            "seller": a.seller,
            "category": a.category,
            "auction_extra": a.extra,
        },
    )


__all__ = ["BidAuctionJoin", "q3", "q4", "q8", "q9", "q20"]
