"""Nexmark q0-q9, q11, q13, q18-q20 on Quix Streams (through Kafka), in the quixstreams venv.

    python -m bench.peers.quix_app --query q7 --bootstrap HOST:PORT --input-topic T \
        --output-topic O --group G --expected N --events E [--state-dir D]

Consumes the input topic from the earliest offset, writes rows as JSON to the output topic and
prints one JSON stats line once all ``expected`` input records were consumed and nothing moved
for 2 s (see :class:`bench.peers.common.Progress`; times run from the first consumed record).

Semantics: the topic's ``timestamp_extractor`` takes event time from ``dateTime``; windows
close when the partition's max event time passes ``end + grace`` with ``grace_ms=4000`` and
``.final(closing_strategy="partition")`` — the Nexmark watermark (max - 4 s); a record whose
window is already closed is dropped as late. State in RocksDB, changelog topics off (our
embedded run keeps state in memory without a changelog). q7 groups every bid under one key
(``group_by``, a repartition topic) like the SQL's single ``GROUP BY window``. q5 also groups
every bid under one key and ``collect()``s the auction ids per hopping window (appended once
per record, shared by the overlapping windows), counting them and emitting the maximum when the
window closes (a ``reduce`` into an ``{auction: count}`` map re-serialises the whole map for
every record and every window, quadratic in the map's size). The two-step form (count per
auction and window, then regroup the closed counts by window) is not possible: Quix Streams
refuses a second ``group_by`` after a first (``GroupByNestingLimit``).
q8 regroups people by ``id`` and auctions by ``seller`` (one ``group_by``) and reduces both
into one tumbling-window accumulator per person (:func:`bench.peers.common.q8_add`), emitting a
row for each closed window holding both; the sentinel bids go along (key ``-1``) to move the
partition's time on.
q11 regroups bids by bidder into ``session_window(10 s, grace_ms=4000)`` windows closed by the
partition's time: Quix Streams joins a bid to a session when it is no more than the gap from it
(bids exactly 10 s apart share one, as in Flink: the reference's ``merge_touching=True``); the
session's ``end`` is its last bid + 1 ms, so ``endtime`` = ``end - 1 + gap``. The sentinel
bids form sessions of their own (bidder ``SENTINEL_AUCTION``), which the harness drops.
q6 needs two regroupings (bids with their auction by auction id, winners by seller); Quix
Streams refuses a second ``group_by`` after a first (``GroupByNestingLimit``), so the first step
(a stateful ``apply``, :func:`bench.peers.common.q6_join`) writes its winners, keyed by seller,
to a topic that a second dataframe of the same app reads (a stateful ``apply``,
:func:`bench.peers.common.q6_latest_mean`): an update stream keyed by seller, whose last row per
seller is the result (the harness keeps it).
q13 reads the side input (:mod:`bench.nexmark.side_input`) into a dict when it starts and
looks up each bid's ``auction % 10000`` (an ``apply``). The sentinel bids (auction -1) give
rows the harness drops. q3, q4, q9, q18-q20: :mod:`bench.peers.quix_joins`.
End of input: the harness's sentinel bids (see :mod:`bench.peers.common`).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from collections import Counter
from typing import Any

from quixstreams import Application
from quixstreams.dataframe import StreamingDataFrame
from quixstreams.dataframe.windows import Count, Max

from bench.nexmark import side_input
from bench.peers import quix_joins
from bench.peers.common import (
    HOP_SIZE_MS,
    HOP_SLIDE_MS,
    OUT_OF_ORDERNESS_MS,
    SESSION_GAP_MS,
    TUMBLE_MS,
    Progress,
    argmax_add,
    q0_row,
    q1_row,
    q2_keep,
    q2_row,
    q5_rows,
    q6_join,
    q6_latest_mean,
    q8_add,
    q8_key,
    q8_relevant,
    q8_rows,
    q8_slim,
    q11_row,
    q13_row,
)

QUERIES = ("q0", "q1", "q2", "q5", "q7", "q8", "q11", "q6", "q13", *quix_joins.QUERIES)


def _q5(bids: StreamingDataFrame, progress: Progress) -> StreamingDataFrame:
    auctions = (
        bids.group_by(lambda _v: "all", name="q5-one-key")
        .update(progress.touch)
        .apply(lambda v: v["auction"])
    )
    closed = (
        auctions.hopping_window(
            HOP_SIZE_MS, HOP_SLIDE_MS, grace_ms=OUT_OF_ORDERNESS_MS, name="q5-bids"
        )
        .collect()
        .final(closing_strategy="partition")
    )
    return closed.apply(lambda r: q5_rows(r["start"], Counter(r["value"])), expand=True)


def _q7(bids: StreamingDataFrame, progress: Progress) -> StreamingDataFrame:
    maxima = (
        bids.group_by(lambda _v: "all", name="q7-one-key")
        .update(progress.touch)
        .tumbling_window(TUMBLE_MS, grace_ms=OUT_OF_ORDERNESS_MS, name="q7-max")
        .reduce(argmax_add, lambda v: argmax_add(None, v))
        .final(closing_strategy="partition")
    )
    return maxima.apply(lambda r: r["value"][1], expand=True)


def _q8(events: StreamingDataFrame, progress: Progress) -> StreamingDataFrame:
    seen = (
        events.filter(q8_relevant)
        .apply(q8_slim)
        .group_by(lambda v: str(q8_key(v)), name="q8-by-person")
        .update(progress.touch)
        .tumbling_window(TUMBLE_MS, grace_ms=OUT_OF_ORDERNESS_MS, name="q8-seen")
        .reduce(q8_add, lambda v: q8_add(None, v))
        .final(closing_strategy="partition")
    )
    return seen.apply(lambda r: q8_rows(r["start"], r["value"]), expand=True)


def _q6(app: Application, events: StreamingDataFrame, progress: Progress, out: str) -> Any:
    """q6's two keyed steps; the second reads the first's output topic (``{out}-winners``, keyed
    by seller) as a second dataframe of the same app."""

    def join(e: Any, state: Any) -> list[Any]:
        s, winners = q6_join(state.get("s"), e)
        state.set("s", s)
        return winners

    def mean(w: Any, state: Any) -> Any:
        won, row = q6_latest_mean(state.get("won"), w)
        state.set("won", won)
        return row

    winners = app.topic(f"{out}-winners", value_deserializer="json", value_serializer="json")
    (
        events.filter(lambda e: e["type"] in ("auction", "bid"))
        .group_by(lambda e: str(e["id"] if e["type"] == "auction" else e["auction"]), name="q6-a")
        .update(progress.touch)
        .apply(join, stateful=True, expand=True)
        .to_topic(winners, key=lambda w: str(w["seller"]))
    )
    return app.dataframe(winners).update(progress.touch).apply(mean, stateful=True)


def _q11(bids: StreamingDataFrame, progress: Progress) -> StreamingDataFrame:
    sessions = (
        bids.group_by(lambda v: str(v["bidder"]), name="q11-by-bidder")
        .update(progress.touch)
        .session_window(SESSION_GAP_MS, grace_ms=OUT_OF_ORDERNESS_MS, name="q11-sessions")
        .agg(n=Count(), bidder=Max("bidder"))
        .final(closing_strategy="partition")
    )
    return sessions.apply(lambda r: q11_row(r["bidder"], [r["n"], r["start"], r["end"] - 1]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="quix_app")
    for a in ("--query", "--bootstrap", "--input-topic", "--output-topic", "--group"):
        p.add_argument(a, required=True)
    p.add_argument("--expected", type=int, required=True, help="input records incl. sentinels")
    p.add_argument("--events", type=int, required=True, help="Nexmark events (for stats)")
    p.add_argument("--state-dir")
    args = p.parse_args(argv)
    if args.query not in QUERIES:
        raise SystemExit(f"quixstreams: query {args.query!r} not implemented")
    state_dir = args.state_dir or tempfile.mkdtemp(prefix="quix-state-")
    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        state_dir=state_dir,
        use_changelog_topics=False,
        loglevel=logging.WARNING,
    )
    progress = Progress(args.query, args.expected, args.events, app.stop)
    inp = app.topic(
        args.input_topic,
        value_deserializer="json",
        timestamp_extractor=lambda v, _h, _ts, _tt: v["dateTime"],
    )
    out = app.topic(args.output_topic, value_serializer="json")
    sdf = app.dataframe(inp).update(progress.input)
    rows: Any
    bids = sdf if args.query in ("q6", "q8") else sdf.filter(lambda e: e["type"] == "bid")
    if args.query in quix_joins.QUERIES:  # q3, q4, q9, q18, q19, q20
        rows = quix_joins.build(app, args.query, sdf, progress, args.output_topic)
    elif args.query == "q0":
        rows = bids.apply(q0_row)
    elif args.query == "q1":
        rows = bids.apply(q1_row)
    elif args.query == "q2":
        rows = bids.filter(q2_keep).apply(q2_row)
    elif args.query == "q8":
        rows = _q8(sdf, progress)
    elif args.query == "q6":
        rows = _q6(app, sdf, progress, args.output_topic)
    elif args.query == "q13":  # the side input, read when the app starts
        side = side_input.load(side_input.path())
        rows = bids.apply(lambda b: q13_row(b, side[b["auction"] % side_input.ROWS]))
    elif args.query == "q11":
        rows = _q11(bids, progress)
    elif args.query == "q5":
        rows = _q5(bids, progress)
    else:
        rows = _q7(bids, progress)
    rows.update(progress.row).to_topic(out)
    app.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
