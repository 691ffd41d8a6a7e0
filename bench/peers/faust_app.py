"""Nexmark q0-q4, q9, q18-q20 on faust-streaming (through Kafka), run inside the faust venv.

    python -m bench.peers.faust_app --query q1 --bootstrap HOST:PORT --input-topic T \
        --output-topic O --group G --expected N --events E

One agent consumes the input topic from the earliest offset (raw bytes, ``json.loads``), sends
rows as JSON to the output topic and the process prints one JSON stats line once all input
was consumed and nothing moved for 2 s (see :class:`bench.peers.common.Progress`). Faust's own
defaults otherwise; ``STREAMS_FAUST_SETTINGS`` (a JSON object of ``faust.App`` settings, e.g.
``{"producer_linger_ms": 10}``) overrides them for tuning trials.

q5, q7 and q8 are not expressible in Faust: its windowed tables assign records to windows by event
time (``relative_to_field``) but expire them by *wall-clock* time (``Table._del_old_keys``
tests ``window.stale(ts, time.time())``, run every ``table_cleanup_interval``): there is no
watermark, a window never closes on event time, and a late record re-opens an expired window;
``on_window_close`` also only receives the raw per-key value (see the ``XXX bug`` note in
``faust/tables/base.py``). See ``NOT_EXPRESSIBLE``. q3, q4, q9, q18-q20 (agents with tables):
:mod:`bench.peers.faust_joins`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
from collections.abc import AsyncIterator
from typing import Any

import faust

from bench.peers import faust_joins
from bench.peers.common import Progress, q0_row, q1_row, q2_keep, q2_row

QUERIES = ("q0", "q1", "q2", *faust_joins.QUERIES)
NOT_EXPRESSIBLE = {
    q: "Faust windows expire on wall-clock time (Table._del_old_keys compares window ends "
    "with time.time()); no event-time watermark, so windows cannot emit once, on close"
    for q in ("q5", "q7", "q8")
}


def _stop() -> None:
    os.kill(os.getpid(), signal.SIGTERM)
    threading.Timer(15.0, lambda: os._exit(0)).start()  # if shutdown hangs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="faust_app")
    for a in ("--query", "--bootstrap", "--input-topic", "--output-topic", "--group"):
        p.add_argument(a, required=True)
    p.add_argument("--expected", type=int, required=True)
    p.add_argument("--events", type=int, required=True)
    args = p.parse_args(argv)
    if args.query not in QUERIES:
        raise SystemExit(f"faust: {args.query}: {NOT_EXPRESSIBLE.get(args.query, 'unknown')}")
    app = faust.App(
        args.group,
        broker=f"kafka://{args.bootstrap}",
        store="memory://",
        datadir=tempfile.mkdtemp(prefix="faust-"),
        topic_partitions=1,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        **json.loads(os.environ.get("STREAMS_FAUST_SETTINGS", "{}")),  # for tuning trials
    )
    inp = app.topic(args.input_topic, value_serializer="raw", key_serializer="raw")
    out = app.topic(args.output_topic, value_serializer="raw", key_serializer="raw")
    progress = Progress(args.query, args.expected, args.events, _stop)
    query = args.query
    if query in faust_joins.QUERIES:  # q3, q4, q9, q18, q19, q20
        faust_joins.setup(app, query, args.input_topic, out, progress)
    else:
        app.agent(inp)(_simple(query, out, progress))
    worker = faust.Worker(app, loglevel="WARNING", quiet=True)
    worker.execute_from_commandline()
    return 0


def _simple(query: str, out: Any, progress: Progress) -> Any:
    """q0-q2: one agent, rows straight from the input."""

    async def process(stream: AsyncIterator[Any]) -> None:
        async for raw in stream:
            progress.input()
            e = json.loads(raw)
            if e["type"] != "bid":
                continue
            if query == "q0":
                row = q0_row(e)
            elif query == "q1":
                row = q1_row(e)
            else:
                if not q2_keep(e):
                    continue
                row = q2_row(e)
            await out.send(value=json.dumps(row).encode())
            progress.row()

    return process


if __name__ == "__main__":
    sys.exit(main())
