"""Nexmark q6 (average selling price by seller) and q13 (bounded side input join) in the DSL.

q6 is an *updating* query (see :data:`bench.nexmark.queries.UPDATING`): upserts keyed by
``seller``, whose final value per key is the result. q13 joins every bid with a bounded side
table (:mod:`bench.nexmark.side_input`) read as a global table from the ``nexmark-side`` topic,
which the runners fill before the query starts (:func:`side_inputs`), as Kafka Streams loads a
global table whole before processing. The SQL and the reference computation are in
:mod:`bench.nexmark.reference_misc`.
"""

from __future__ import annotations

import heapq
from typing import Any

import streams as st
from bench.nexmark import side_input
from bench.nexmark.base import OUTPUT, of_type, source
from bench.nexmark.queries_joins import BidAuctionJoin
from streams import agg
from streams.core.serde import JSON
from streams.plan import nodes as plan

Row = dict[str, Any]
Q6_LAST = 11
"""Auctions per seller in q6's average: the SQL's ``ROWS BETWEEN 10 PRECEDING AND CURRENT ROW``
is 11 rows (the current one and 10 before it), although the query's description says 10."""
SIDE_TOPIC = "nexmark-side"


def q6() -> st.Topology:
    """Average selling price by seller: per seller, the average final price of its latest 11
    auctions (ordered by the winning bid's ``dateTime``, then the auction id).

    An auction's final price is its highest bid within ``[dateTime, expires]`` (on equal prices
    the earlier bid, then the earlier arrival, as q9); the join sends each new winner
    ``(seller, auction, price, dateTime)`` to a per-seller aggregate holding every auction's
    current winner (a winner replaces the auction's previous one, the retraction Flink's SQL
    does), which emits the average of the latest 11. Updating: upserts keyed by ``seller``. The
    average is a float (Flink's AVG over BIGINT truncates).
    """
    t, src = source("q6", kinds=("auction", "bid"))
    (
        BidAuctionJoin("q6-join", _q6_auction, _q6_pair)
        .apply(src)
        .key_by(lambda w: w[0], name="q6-by-seller")
        .aggregate("q6-avg", _latest_mean())
        .to(OUTPUT, key=JSON)
    )
    return t


def _q6_auction(a: Any) -> list[Any]:
    return [a.dateTime, a.expires, a.seller, None, None]


def _q6_pair(ctx: st.ProcessorContext, s: list[Any], b: Any) -> list[Any] | None:
    start, expires, seller, best, best_t = s
    t, price = b.dateTime, b.price
    if not start <= t <= expires:
        return None
    if best is not None and (price < best or (price == best and t >= best_t)):
        return None
    ctx.forward(ctx.key, (seller, b.auction, price, t))
    return [start, expires, seller, price, t]


def _latest_mean() -> agg.Agg:
    """Over ``(seller, auction, price, dateTime)`` winners: the average price of the latest
    :data:`Q6_LAST` auctions by ``(dateTime, auction)``, an auction counting with its last
    winner."""

    def add(acc: list[Any], w: tuple[int, int, int, int]) -> list[Any]:
        seller, auction, price, t = w
        acc[1][auction] = (t, price)
        return [seller, acc[1]]

    def result(acc: list[Any]) -> Row:
        won: dict[int, tuple[int, int]] = acc[1]
        latest = heapq.nlargest(Q6_LAST, won.items(), key=lambda kv: (kv[1][0], kv[0]))
        return {"seller": acc[0], "avg_price": sum(p for _, (_, p) in latest) / len(latest)}

    return agg.custom(init=lambda: [None, {}], add=add, result=result, name="latest_mean")


def q13() -> st.Topology:
    """Bounded side input join: each bid with the side table's ``value`` for
    ``auction % 10000`` (inner join; the side table covers every key)."""
    t, src = source("q13", kinds=("bid",))
    side = t.global_table(SIDE_TOPIC, key=int, value=str, name="q13-side")
    (
        of_type(src, "bid")
        .join(
            side,
            _q13_row,
            key=st.col("auction") % side_input.ROWS,
            name="q13-join",
        )
        .to(OUTPUT)
    )
    return t


def _q13_row(b: Any, value: str) -> Row:
    return {
        "auction": b.auction,
        "bidder": b.bidder,
        "price": b.price,
        "dateTime": b.dateTime,
        "value": value,
    }


def side_inputs(topo: st.Topology) -> list[tuple[plan.GlobalTableSource, list[tuple[Any, Any]]]]:
    """The bounded side tables a query reads, with their ``(key, value)`` records: what a runner
    loads into their topics before the query starts."""
    out = []
    for n in topo.nodes:
        if isinstance(n, plan.GlobalTableSource) and n.topic == SIDE_TOPIC:
            out.append((n, list(side_input.load(side_input.path()).items())))
    return out


__all__ = ["Q6_LAST", "SIDE_TOPIC", "q6", "q13", "side_inputs"]
