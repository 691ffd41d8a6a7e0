"""Nexmark queries in the streams DSL (event time from ``dateTime``, watermark = max - 4 s).

Each ``qN()`` returns a topology reading the ``nexmark`` topic (one JSON event per record, with
a ``type`` field) and writing result rows to ``OUTPUT``, field names as in the Nexmark SQL's
SELECT list (see :mod:`bench.nexmark.reference` for the SQL and the independent DuckDB
computation the tests compare against). The queries joining people, auctions and bids (q3,
q4, q8, q9, q20) are in :mod:`bench.nexmark.queries_joins`; :data:`QUERIES` lists them all.

The non-windowed *updating* queries (:data:`UPDATING`: q3, q4, q9, q18, q19) write an upsert
stream keyed by the result's primary key (JSON keys; a ``None`` value deletes the row): their
result is the *final value per key* (:func:`final_rows`), which is what the Nexmark SQL's
result table holds at the end of the input. The others are append-only.

>>> sorted(QUERIES, key=lambda q: int(q[1:]))  # doctest: +NORMALIZE_WHITESPACE
['q0', 'q1', 'q2', 'q3', 'q4', 'q5', 'q6', 'q7', 'q8', 'q9', 'q10', 'q11', 'q12', 'q13', 'q14',
 'q15', 'q16', 'q17', 'q18', 'q19', 'q20', 'q21', 'q22']
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from typing import Any

import streams as st
from bench.nexmark import queries_joins as joins
from bench.nexmark import queries_misc as misc
from bench.nexmark import queries_stats as stats
from bench.nexmark import queries_time as time_q
from bench.nexmark.base import INPUT, OUT_OF_ORDERNESS_MS, OUTPUT, of_type, source
from streams import agg, windows
from streams.core.serde import JSON

BID_FIELDS = ("auction", "bidder", "price", "channel", "url", "dateTime", "extra")
SESSION_GAP_MS = 10_000
TOP_N = 10


def _bids(name: str) -> tuple[st.Topology, st.Stream]:
    t, src = source(name, kinds=("bid",))
    return t, of_type(src, "bid")


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
        counts.with_columns(auction=st.key(), name="q5-auction")
        .key_by(st.col("window_start"), name="q5-by-window")
        .window("q5-max", windows.tumbling(ms=2_000))
        .aggregate(rows=agg.argmax("n", keep=hottest))
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
        .aggregate(
            rows=agg.argmax("price", keep=("auction", "bidder", "price", "dateTime", "extra"))
        )
        .flat_map(lambda k, v: [(None, b) for b in v["rows"]], name="q7-highest")
        .to(OUTPUT)
    )
    return t


def q11() -> st.Topology:
    """User sessions: bids per bidder per session window (gap 10 s).

    Our sessions hold records at most the gap apart (bids exactly 10 s apart share one, as in
    Flink); ``window_start``/``window_end`` are the first and last bid, so ``endtime`` (Flink's
    ``SESSION_END``) is the last bid + the gap.
    """
    t, bids = _bids("q11")
    (
        bids.key_by("bidder", name="q11-by-bidder")
        .window("q11-sessions", windows.session(ms=SESSION_GAP_MS))
        .count()
        .map(_q11_row, name="q11-row")
        .to(OUTPUT)
    )
    return t


def _q11_row(bidder: Any, v: dict[str, Any]) -> tuple[None, dict[str, Any]]:
    return None, {
        "bidder": bidder,
        "bid_count": v["n"],
        "starttime": v["window_start"],
        "endtime": v["window_end"] + SESSION_GAP_MS,
    }


def q18() -> st.Topology:
    """Last bid per (bidder, auction) by ``dateTime`` (ROW_NUMBER() = 1, ``dateTime`` DESC).

    Updating: the output is an upsert stream keyed by ``[bidder, auction]``; its final value
    per key is the result. Ties on ``dateTime``: the later arrival wins.
    """
    t, bids = _bids("q18")
    (
        bids.select(*BID_FIELDS, name="q18-fields")
        .key_by(lambda v: (v["bidder"], v["auction"]), name="q18-key")
        .reduce("q18-last", _later)
        .to(OUTPUT, key=JSON)
    )
    return t


def _later(acc: dict[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    return v if v["dateTime"] >= acc["dateTime"] else acc


def q19() -> st.Topology:
    """Top 10 bids per auction by price (ROW_NUMBER() <= 10, ``price`` DESC).

    Updating: an upsert stream keyed by ``[auction, rank_number]``; a bid entering the top 10
    at rank r re-emits ranks r..10 (the rows it pushed down), as Flink's Top-N does. The
    final value per key is the result. Ties on price: the earlier arrival ranks first.
    """
    t, bids = _bids("q19")
    (
        bids.key_by("auction", name="q19-by-auction")
        .process("q19-top", _q19_top, stores=["q19-top"])
        .to(OUTPUT, key=JSON)
    )
    return t


def _q19_top(ctx: st.ProcessorContext) -> None:
    store = ctx.store("q19-top")
    top: list[dict[str, Any]] = store.get(ctx.key) or []
    v = ctx.value
    price = v.price
    i = len(top)
    while i and top[i - 1]["price"] < price:
        i -= 1
    if i >= TOP_N:
        return
    top.insert(i, {f: getattr(v, f) for f in BID_FIELDS})
    del top[TOP_N:]
    store.put(ctx.key, top)
    for r in range(i, len(top)):
        ctx.forward((ctx.key, r + 1), {**top[r], "rank_number": r + 1})


QUERIES: dict[str, Callable[[], st.Topology]] = {
    "q0": q0,
    "q1": q1,
    "q2": q2,
    "q3": joins.q3,
    "q4": joins.q4,
    "q5": q5,
    "q6": misc.q6,
    "q7": q7,
    "q8": joins.q8,
    "q9": joins.q9,
    "q11": q11,
    "q13": misc.q13,
    "q14": stats.q14,
    "q15": stats.q15,
    "q16": stats.q16,
    "q17": stats.q17,
    "q18": q18,
    "q19": q19,
    "q20": joins.q20,
    "q21": stats.q21,
    "q22": stats.q22,
    "q10": time_q.q10,
    "q12": time_q.q12,
}

UPDATING = frozenset({"q3", "q4", "q6", "q9", "q18", "q19"})
"""Queries whose output is an upsert stream by key; their result is :func:`final_rows`."""


FILE_OUTPUT = frozenset({"q10"})
"""Queries whose result is files (a Parquet directory, see :mod:`bench.nexmark.queries_time`),
not records on ``OUTPUT``: :func:`run_driver` and the runner read the files back."""

NONDETERMINISTIC: dict[str, str] = {
    "q12": "processing-time windows: which window a bid lands in depends on when it runs",
}
"""Queries whose rows depend on when records are processed, with the reason: their tests
check what does not (``tests/bench/test_nexmark_time.py``), not each row."""


def final_rows(records: list[tuple[Any, Any]]) -> list[dict[str, Any]]:
    """The final value per key of an upsert stream of ``(key, value)`` (``None`` deletes)."""
    last: dict[str, Any] = {}
    for k, v in records:
        last[json.dumps(k)] = v
    return [v for v in last.values() if v is not None]


def run_driver(
    query: str, events: list[dict[str, Any]], partitions: int = 1, batch: int = 500
) -> list[dict[str, Any]]:
    """Run a query over events with the test driver, ``batch`` events per micro-batch; the
    watermark goes to the end at the end.

    Returns the output rows, for an :data:`UPDATING` query the final value per key, for a
    :data:`FILE_OUTPUT` query the rows of its files.
    """
    if query in FILE_OUTPUT:
        with tempfile.TemporaryDirectory() as out, time_q.output_dir(out):
            _drive(query, events, partitions, batch)
            return time_q.read_files(out)
    d = _drive(query, events, partitions, batch)
    if query in UPDATING:
        return final_rows(d.read_key_values(OUTPUT))
    return [r.value for r in d.read(OUTPUT)]


def _drive(
    query: str, events: list[dict[str, Any]], partitions: int, batch: int
) -> st.TopologyTestDriver:
    topo = QUERIES[query]()
    d = st.TopologyTestDriver(topo, partitions=partitions)
    for node, records in misc.side_inputs(topo):
        d.pipe_many(node.topic, [(k, v, 0) for k, v in records])
    for i in range(0, len(events), batch):
        d.pipe_many(INPUT, [(None, e, e["dateTime"]) for e in events[i : i + batch]])
    d.end_of_input()
    return d


__all__ = [
    "FILE_OUTPUT",
    "INPUT",
    "NONDETERMINISTIC",
    "OUTPUT",
    "OUT_OF_ORDERNESS_MS",
    "QUERIES",
    "UPDATING",
    "final_rows",
    "q0",
    "q1",
    "q2",
    "q5",
    "q7",
    "q11",
    "q18",
    "q19",
    "run_driver",
]
