"""Nexmark q0-q22 on bytewax (in-process), run inside the bytewax venv.

    python -m bench.peers.bytewax_app --query q5 --input events.jsonl --output rows.jsonl

Reads the JSONL with ``FileSource``, runs the dataflow with ``run_main`` (one worker, this
process), writes rows with ``FileSink`` and prints one JSON stats line (CPU and wall time of
``run_main``: decode, query, encode, file I/O).

Semantics: bytewax's ``EventClock`` gives event time and a watermark of max seen minus
``wait_for_system_duration`` (4 s) plus the system time elapsed since that max; ``now_getter``
is pinned to a constant, so the watermark is exactly max - 4 s, deterministic. Windows close
(and ``fold_window`` emits) once the watermark passes their end, and at end of input all close.
Bytewax's clocks are *per key*, so a global watermark needs a single key: q7 keys every bid by
one key (as the SQL's single ``GROUP BY window``); q5 also uses one key with a per-window
``{auction: count}`` map, because a per-auction count step would close each auction's windows
on that auction's own clock and a second, per-window step could never know when all counts
for a window are in.
q8 likewise keys people and auctions by one key and folds them into one tumbling-window
``{person: accumulator}`` map (:func:`bench.peers.common.q8_add`: the person's name, whether it
sold), emitting a row for each person in a closed window with both. (Keyed by person, each
person's windows would close on that person's own clock, i.e. mostly only at end of input:
correct, but with every person's windows open at once, and bytewax's per-key window logic then
costs ~45x more: 5.4K against 247K events/s per core on the same 1M events, one trial each.)
q11 keys bids by bidder into ``SessionWindower(gap=10 s)`` windows: a per-key clock is right
here, since a session only ever depends on its own bidder's bids. Bytewax merges sessions whose
gap is ``<= gap`` (bids exactly 10 s apart share one, as in Flink: the reference's
``merge_touching=True``); the fold keeps ``[count, first, last]`` and ``endtime`` is the last
bid + the gap (Flink's ``SESSION_END``). q6 and q13: :mod:`bench.peers.bytewax_misc`; q3, q4,
q9, q18-q20: :mod:`bench.peers.bytewax_joins`.

q10 writes each bid's row as a JSON line into ``dt=.../hm=...`` directories (UTC) under
``--output``'s ``.d`` directory, through :class:`PartitionedSink` (bytewax has no partitioned
file sink; one file per partition and worker: a minute of event time, as Flink's one-minute
rolling); the rows, with ``dt``/``hm`` from the directory names, are then collected into
``--output`` (not timed). q12 counts bids per bidder in tumbling 10 s windows of bytewax's
``SystemClock`` (processing time; every window closes at the end of the input).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import bytewax.operators as op
import bytewax.operators.windowing as win
from bytewax.connectors.files import FileSink, FileSource
from bytewax.dataflow import Dataflow, Stream
from bytewax.operators.windowing import (
    EventClock,
    SessionWindower,
    SlidingWindower,
    SystemClock,
    TumblingWindower,
)
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from bytewax.testing import run_main

from bench.peers import bytewax_joins, bytewax_misc
from bench.peers.common import (
    HOP_SIZE_MS,
    HOP_SLIDE_MS,
    OUT_OF_ORDERNESS_MS,
    SESSION_GAP_MS,
    TUMBLE_MS,
    Row,
    argmax_add,
    q0_row,
    q1_row,
    q2_keep,
    q2_row,
    q5_rows,
    q8_add,
    q8_key,
    q8_rows,
    q8_slim,
    q11_row,
    stats_line,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
QUERIES = ("q0", "q1", "q2", "q5", "q7", "q8", "q10", "q11", "q12", *bytewax_misc.QUERIES)
QUERIES += bytewax_joins.QUERIES


def _ts(e: Row) -> datetime:
    return EPOCH + timedelta(milliseconds=e["dateTime"])


def _clock() -> EventClock:
    return EventClock(
        _ts,
        wait_for_system_duration=timedelta(milliseconds=OUT_OF_ORDERNESS_MS),
        now_getter=lambda: EPOCH,  # no system-time drift: watermark = max - 4 s exactly
    )


def _ms(d: timedelta) -> int:
    return d // timedelta(milliseconds=1)


def _q5(bids: Stream[Row]) -> Stream[Row]:
    one = op.key_on("q5-one-key", bids, lambda _: "all")

    def count(acc: dict[int, int], e: Row) -> dict[int, int]:
        a = e["auction"]
        acc[a] = acc.get(a, 0) + 1
        return acc

    windower = SlidingWindower(
        length=timedelta(milliseconds=HOP_SIZE_MS),
        offset=timedelta(milliseconds=HOP_SLIDE_MS),
        align_to=EPOCH,
    )
    out = win.fold_window("q5-counts", one, _clock(), windower, dict, count, _merge, ordered=False)
    # window id n opens at align_to + n * offset
    return op.flat_map(
        "q5-hottest", out.down, lambda kv: q5_rows(kv[1][0] * HOP_SLIDE_MS, kv[1][1])
    )


def _merge(a: Any, b: Any) -> Any:  # only session windows merge
    raise AssertionError("fixed windows never merge")


def _q7(bids: Stream[Row]) -> Stream[Row]:
    one = op.key_on("q7-one-key", bids, lambda _: "all")
    windower = TumblingWindower(length=timedelta(milliseconds=TUMBLE_MS), align_to=EPOCH)
    out = win.fold_window(
        "q7-max", one, _clock(), windower, lambda: None, argmax_add, _merge, ordered=False
    )
    return op.flat_map("q7-highest", out.down, lambda kv: kv[1][1][1] if kv[1][1] else [])


def _q11(bids: Stream[Row]) -> Stream[Row]:
    by_bidder = op.key_on("q11-by-bidder", bids, lambda e: str(e["bidder"]))

    def add(acc: list[int] | None, e: Row) -> list[int]:
        t = e["dateTime"]
        if acc is None:
            return [1, t, t]
        return [acc[0] + 1, min(acc[1], t), max(acc[2], t)]

    def merge(a: list[int] | None, b: list[int] | None) -> list[int] | None:
        if a is None or b is None:
            return a or b
        return [a[0] + b[0], min(a[1], b[1]), max(a[2], b[2])]

    windower = SessionWindower(gap=timedelta(milliseconds=SESSION_GAP_MS))
    out = win.fold_window(
        "q11-sessions", by_bidder, _clock(), windower, lambda: None, add, merge, ordered=False
    )
    return op.map("q11-row", out.down, lambda kv: q11_row(int(kv[0]), kv[1][1]))


def _q8(events: Stream[Row]) -> Stream[Row]:
    rel = op.map("q8-slim", op.filter("q8-people-auctions", events, _not_bid), q8_slim)
    one = op.key_on("q8-one-key", rel, lambda _: "all")

    def add(acc: dict[int, list[Any]], e: Row) -> dict[int, list[Any]]:
        k = q8_key(e)
        acc[k] = q8_add(acc.get(k), e)
        return acc

    windower = TumblingWindower(length=timedelta(milliseconds=TUMBLE_MS), align_to=EPOCH)
    out = win.fold_window("q8-seen", one, _clock(), windower, dict, add, _merge, ordered=False)
    # window id n opens at align_to + n * length
    return op.flat_map(
        "q8-rows",
        out.down,
        lambda kv: [r for acc in kv[1][1].values() for r in q8_rows(kv[1][0] * TUMBLE_MS, acc)],
    )


def _q12(bids: Stream[Row]) -> Stream[Row]:
    windower = TumblingWindower(length=timedelta(milliseconds=TUMBLE_MS), align_to=EPOCH)
    out = win.count_window("q12-counts", bids, SystemClock(), windower, lambda e: str(e["bidder"]))
    # window id n opens at align_to + n * length
    return op.map("q12-row", out.down, _q12_row)


def _q12_row(kv: tuple[str, tuple[int, int]]) -> Row:
    bidder, (n, count) = kv
    start = n * TUMBLE_MS
    return {
        "bidder": int(bidder),
        "bid_count": count,
        "starttime": start,
        "endtime": start + TUMBLE_MS,
    }


def _partition(e: Row) -> tuple[str, Row]:
    """q10: a bid's ``dt=.../hm=...`` directory (its ``dateTime`` in UTC) and row."""
    t = _ts(e)
    return f"dt={t:%Y-%m-%d}/hm={t:%H:%M}", q0_row(e)


class _PartitionedWriter(StatelessSinkPartition[tuple[str, Row]]):
    def __init__(self, root: str, worker: int) -> None:
        self.root, self.name = root, f"part-{worker}.jsonl"
        self.files: dict[str, Any] = {}

    def write_batch(self, items: list[tuple[str, Row]]) -> None:
        for d, row in items:
            f = self.files.get(d)
            if f is None:
                os.makedirs(os.path.join(self.root, d), exist_ok=True)
                f = self.files[d] = open(os.path.join(self.root, d, self.name), "a")  # noqa: SIM115
            f.write(json.dumps(row) + "\n")

    def close(self) -> None:
        for f in self.files.values():
            f.close()


class PartitionedSink(DynamicSink[tuple[str, Row]]):
    """JSON lines into the ``(directory, row)`` items' directories under ``root``."""

    def __init__(self, root: str) -> None:
        self.root = root

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _PartitionedWriter:
        return _PartitionedWriter(self.root, worker_index)


def _collect(root: str, output: str) -> int:
    """The partitioned files' rows, with ``dt``/``hm`` from their directories, into ``output``."""
    n = 0
    with open(output, "w") as out:
        for d, _, files in sorted(os.walk(root)):
            parts = dict(
                p.split("=", 1) for p in os.path.relpath(d, root).split(os.sep) if "=" in p
            )
            for name in sorted(files):
                with open(os.path.join(d, name)) as f:
                    for line in f:
                        out.write(json.dumps({**json.loads(line), **parts}) + "\n")
                        n += 1
    return n


def _not_bid(e: Row) -> bool:
    return e["type"] != "bid"


def build(query: str, input_path: str, output_path: str) -> Dataflow:
    flow = Dataflow(f"nexmark-{query}")
    lines = op.input("in", flow, FileSource(input_path, batch_size=1000))
    events = op.map("decode", lines, json.loads)
    if query in bytewax_misc.QUERIES:  # q6, q13
        return _finish(flow, bytewax_misc.build(query, events), output_path)
    if query in bytewax_joins.QUERIES:  # q3, q4, q9, q18, q19, q20
        return _finish(flow, bytewax_joins.build(query, events), output_path)
    if query == "q8":  # people and auctions, no bids
        return _finish(flow, _q8(events), output_path)
    bids = op.filter("bids", events, lambda e: e["type"] == "bid")
    if query == "q0":
        rows = op.map("q0", bids, q0_row)
    elif query == "q1":
        rows = op.map("q1", bids, q1_row)
    elif query == "q2":
        rows = op.map("q2", op.filter("q2-sel", bids, q2_keep), q2_row)
    elif query == "q5":
        rows = _q5(bids)
    elif query == "q7":
        rows = _q7(bids)
    elif query == "q11":
        rows = _q11(bids)
    elif query == "q10":
        op.output("out", op.map("q10-partition", bids, _partition), PartitionedSink(output_path))
        return flow
    elif query == "q12":
        rows = _q12(bids)
    elif query in ("q14", "q15", "q16", "q17", "q21", "q22"):
        from bench.peers import bytewax_stats

        rows = bytewax_stats.rows(query, bids)
    else:
        raise SystemExit(f"bytewax: query {query!r} not implemented; have {', '.join(QUERIES)}")
    return _finish(flow, rows, output_path)


def _finish(flow: Dataflow, rows: Stream[Row], output_path: str) -> Dataflow:
    encoded = op.map("encode", rows, lambda r: ("out", json.dumps(r)))
    op.output("out", encoded, FileSink(output_path))
    return flow


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bytewax_app")
    p.add_argument("--query", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--events", type=int, required=True, help="events in the input (for stats)")
    args = p.parse_args(argv)
    if os.path.exists(args.output):
        os.remove(args.output)
    files = args.output + ".d"  # q10's partitioned files
    shutil.rmtree(files, ignore_errors=True)
    flow = build(args.query, args.input, files if args.query == "q10" else args.output)
    c0, t0 = time.process_time(), time.perf_counter()
    run_main(flow)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if args.query == "q10":
        rows = _collect(files, args.output)
        shutil.rmtree(files)
    else:
        with open(args.output, "rb") as f:
            rows = sum(1 for _ in f)
    print(stats_line(args.query, args.events, rows, wall, cpu), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
