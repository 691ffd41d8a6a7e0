"""Command line for the Nexmark suite (routed from ``python -m bench nexmark ...``).

    python -m bench nexmark generate --events 1000000 --seed 1 --out /tmp/nexmark.jsonl
    python -m bench nexmark reference --in /tmp/nexmark.jsonl --query q5 [--out q5.jsonl]
    python -m bench nexmark compare --queries q0,q1,q2,q5,q7,q8 --events 1000000 [--check]

``generate`` writes the events as JSON lines and prints one JSON line of stats, e.g.
``{"events": 1000000, "seconds": 3.1, "events_per_s": 322580, "counts": {"person": 20000,
"auction": 60000, "bid": 920000}, ...}``. ``reference`` computes a query's result with DuckDB
(:mod:`bench.nexmark.reference`), writes its rows as JSON lines to ``--out`` if given, and
prints a JSON stats line (rows, seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence

import msgspec

from bench.nexmark.generator import (
    DEFAULT_FIRST_EVENT_TIME_MS,
    NEXMARK_WATERMARK_DELAY_MS,
    GeneratorConfig,
    write_jsonl,
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench nexmark", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="write Nexmark events as JSON lines")
    g.add_argument("--events", type=int, required=True, help="number of events")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--out", required=True, help="output .jsonl path")
    g.add_argument(
        "--rate", type=float, default=10_000.0, help="event-time events/s (Beam firstEventRate)"
    )
    g.add_argument(
        "--max-out-of-order-ms",
        type=int,
        default=3_000,
        help=f"max lateness of a delayed event, 0..{NEXMARK_WATERMARK_DELAY_MS} (default 3000)",
    )
    g.add_argument(
        "--prob-delayed", type=float, default=0.1, help="fraction of late events (default 0.1)"
    )
    g.add_argument("--first-event-time-ms", type=int, default=DEFAULT_FIRST_EVENT_TIME_MS)
    g.add_argument(
        "--first-event-number", type=int, default=0, help="start mid-stream (for chunks)"
    )
    g.add_argument(
        "--workers",
        type=int,
        default=1,
        help="generator processes; the output is identical for any value (default 1)",
    )

    q = sub.add_parser("run", help="run a query (our DSL) over a .jsonl file, embedded runtime")
    q.add_argument("--query", required=True, help="q0 ... q22 (see bench.nexmark.queries)")
    q.add_argument("--input", required=True, help="events .jsonl")
    q.add_argument(
        "--output",
        help="result rows as JSON lines (without it: a blackhole sink, rows counted, not encoded)",
    )
    q.add_argument("--partitions", type=int, default=1)
    q.add_argument(
        "--mode",
        choices=("auto", "row", "columnar"),
        default="auto",
        help="auto: what a user gets (typed events; expression chains on Arrow); row: every "
        "step row-wise on the typed objects; columnar: every expression chain on Arrow",
    )
    q.add_argument(
        "--from-arrow",
        action="store_true",
        help="read the events into an Arrow table first (not timed) and run bounded over it",
    )

    c = sub.add_parser(
        "compare", help="ours vs peers (bytewax, quixstreams, faust, kafka-streams, pyflink)"
    )
    from bench.peers.harness import add_arguments

    add_arguments(c)

    r = sub.add_parser("reference", help="compute a query's result with DuckDB")
    r.add_argument("--in", dest="inp", required=True, help="events .jsonl")
    r.add_argument("--query", required=True, help="q0 ... q22 (see bench.nexmark.reference) or all")
    r.add_argument("--out", help="write result rows as JSON lines here (with --query all: a dir)")
    return p


def _generate(args: argparse.Namespace) -> int:
    try:
        cfg = GeneratorConfig(
            seed=args.seed,
            first_event_time_ms=args.first_event_time_ms,
            rate_per_s=args.rate,
            max_out_of_order_ms=args.max_out_of_order_ms,
            prob_delayed_event=args.prob_delayed,
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    stats = write_jsonl(
        args.out,
        args.events,
        config=cfg,
        first_event_number=args.first_event_number,
        workers=max(1, args.workers),
    )
    stats["out"] = str(args.out)
    print(json.dumps(stats))
    return 0


def _reference(args: argparse.Namespace) -> int:
    from bench.nexmark.reference import QUERIES, NexmarkReference

    names = list(QUERIES) if args.query == "all" else [args.query]
    unknown = [n for n in names if n not in QUERIES]
    if unknown:
        print(f"error: unknown query {unknown[0]!r}; known: {', '.join(QUERIES)}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    with NexmarkReference(args.inp) as ref:
        load_s = time.perf_counter() - t0
        encoder = msgspec.json.Encoder()
        for name in names:
            t1 = time.perf_counter()
            rows = QUERIES[name](ref)
            secs = time.perf_counter() - t1
            out = args.out
            if out and len(names) > 1:
                os.makedirs(out, exist_ok=True)
                out = os.path.join(out, f"{name}.jsonl")
            if out:
                with open(out, "wb") as f:
                    f.write(encoder.encode_lines(rows))
            line = {"query": name, "rows": len(rows), "seconds": round(secs, 3)}
            line["load_seconds"] = round(load_s, 3)
            if out:
                line["out"] = out
            print(json.dumps(line))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(argv) if argv is not None else None)
    if args.command == "generate":
        return _generate(args)
    if args.command == "run":
        from bench.nexmark.runner import main_run

        return main_run(
            args.query, args.input, args.output, args.partitions, args.mode, args.from_arrow
        )
    if args.command == "compare":
        from bench.peers.harness import main as compare

        return compare(args, list(argv) if argv is not None else sys.argv[1:])
    return _reference(args)


if __name__ == "__main__":
    sys.exit(main())
