"""Nexmark queries in the streams DSL (event time from ``dateTime``, watermark = max - 4 s).

Each ``qN()`` returns a topology reading the ``nexmark`` topic (one JSON event per record, with
a ``type`` field) and writing result rows to ``OUTPUT``, field names as in the Nexmark SQL's
SELECT list (see :mod:`bench.nexmark.reference` for the SQL and the independent DuckDB
computation the tests compare against).

>>> sorted(QUERIES)
['q0', 'q1', 'q2', 'q5', 'q7']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streams as st
from streams import agg, windows

INPUT = "nexmark"
OUTPUT = "nexmark-out"
OUT_OF_ORDERNESS_MS = 4_000


def _bids(name: str) -> tuple[st.Topology, st.Stream]:
    t = st.Topology(f"nexmark-{name}")
    src = t.source(INPUT, timestamp="dateTime", max_out_of_orderness=OUT_OF_ORDERNESS_MS)
    return t, src.filter(st.col("type") == "bid", name="bids")


def q0() -> st.Topology:
    """Pass-through."""
    t, bids = _bids("q0")
    bids.select("auction", "bidder", "price", "dateTime", "extra").to(OUTPUT)
    return t


def q1() -> st.Topology:
    """Currency conversion: ``0.908 * price``."""
    t, bids = _bids("q1")
    bids.select("auction", "bidder", "dateTime", "extra", price=st.col("price") * 0.908).to(OUTPUT)
    return t


def q2() -> st.Topology:
    """Selection: ``auction % 123 = 0``."""
    t, bids = _bids("q2")
    bids.filter(st.col("auction") % 123 == 0).select("auction", "price").to(OUTPUT)
    return t


def argmax(field: str, keep: tuple[str, ...]) -> agg.Agg:
    """The rows with the largest ``field`` (all of them on ties), keeping only ``keep``; O(1)
    per record, unlike collecting every row of the window."""

    def add(acc: tuple[Any, list[dict[str, Any]]] | None, v: dict[str, Any]) -> Any:
        x = v[field]
        row = {f: v[f] for f in keep}
        if acc is None or x > acc[0]:
            return (x, [row])
        if x == acc[0]:
            return (acc[0], [*acc[1], row])
        return acc

    return agg.custom(
        init=lambda: None,
        add=add,
        result=lambda acc: [] if acc is None else acc[1],
        name=f"argmax_{field}",
    )


def q5() -> st.Topology:
    """Hot items: per hopping window (10 s every 2 s) the auction(s) with the most bids.

    Two windowed steps: bids per (auction, window), then, keyed by the window, the maximum. The
    second step's tumbling 2 s window holds exactly one hopping window's counts (they all carry
    the timestamp ``window_end - 1``); watermarks follow through the repartition topic.
    """
    t, bids = _bids("q5")
    counts = (
        bids.key_by("auction")
        .window("q5-counts", windows.hopping(ms=10_000, advance=2_000))
        .count()
    )
    hottest = ("auction", "n", "window_start", "window_end")
    (
        counts.map(lambda k, v: (v["window_start"], {**v, "auction": k}), name="q5-by-window")
        .window("q5-max", windows.tumbling(ms=2_000))
        .aggregate(rows=argmax("n", hottest))
        .flat_map(lambda k, v: [(None, _q5_row(r)) for r in v["rows"]], name="q5-hottest")
        .to(OUTPUT)
    )
    return t


def _q5_row(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "auction": r["auction"],
        "num": r["n"],
        "starttime": r["window_start"],
        "endtime": r["window_end"],
    }


def q7() -> st.Topology:
    """Highest bid(s) per tumbling 10 s window."""
    t, bids = _bids("q7")
    (
        bids.key_by(st.lit("all"), name="q7-one-key")
        .window("q7-max", windows.tumbling(ms=10_000))
        .aggregate(rows=argmax("price", ("auction", "bidder", "price", "dateTime", "extra")))
        .flat_map(lambda k, v: [(None, b) for b in v["rows"]], name="q7-highest")
        .to(OUTPUT)
    )
    return t


QUERIES: dict[str, Callable[[], st.Topology]] = {
    "q0": q0,
    "q1": q1,
    "q2": q2,
    "q5": q5,
    "q7": q7,
}


def run_driver(
    query: str, events: list[dict[str, Any]], partitions: int = 1
) -> list[dict[str, Any]]:
    """Run a query over events with the test driver; the watermark goes to the end at the end."""
    d = st.TopologyTestDriver(QUERIES[query](), partitions=partitions)
    d.pipe_many(INPUT, [(None, e, e["dateTime"]) for e in events])
    d.end_of_input()
    return [r.value for r in d.read(OUTPUT)]


__all__ = ["INPUT", "OUTPUT", "QUERIES", "q0", "q1", "q2", "q5", "q7", "run_driver"]
