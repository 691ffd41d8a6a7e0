"""``python -m bench nexmark run``: a query over a JSONL file on the embedded runtime.

The events are loaded into the in-process broker, a ``Worker`` runs the query until the input
is consumed, then event time goes to the end so every window closes (Nexmark's "watermark to
infinity"); result rows go to ``--output`` as JSON lines and a JSON line of stats is printed.
"""

from __future__ import annotations

import asyncio
import json
import resource
import time
from pathlib import Path
from typing import Any

import msgspec

import streams as st
from bench.nexmark.queries import INPUT, OUTPUT, QUERIES
from streams.runtime.broker import TopicPartition
from streams.runtime.embedded import EmbeddedBroker


def run_file(
    query: str, input_path: str, output_path: str | None, partitions: int = 1
) -> dict[str, Any]:
    if query not in QUERIES:
        raise SystemExit(f"unknown query {query!r}; have {', '.join(sorted(QUERIES))}")
    b = EmbeddedBroker(default_partitions=partitions)
    b.create_topic(INPUT, partitions)
    b.create_topic(OUTPUT, partitions)
    dec = msgspec.json.Decoder()
    n = 0
    batch: list[list[Any]] = [[] for _ in range(partitions)]
    with open(input_path, "rb") as f:
        for line in f:
            if not line.strip():
                continue
            ts = dec.decode(line)["dateTime"]
            batch[n % partitions].append((None, line.rstrip(b"\n"), ts, ()))
            n += 1
    for p, recs in enumerate(batch):
        b.append_batch(INPUT, p, recs)
    worker = st.Worker(QUERIES[query](), b, st.Config(state_backend="memory"))
    c0, t0 = time.process_time(), time.perf_counter()
    asyncio.run(worker.run(until_idle=True, end_of_input=True))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    lines = [
        m[1]
        for p in range(partitions)
        for m in b.fetch_raw(TopicPartition(OUTPUT, p), 0)
        if m[1] is not None
    ]
    rows = len(lines)
    if output_path:
        Path(output_path).write_bytes(b"".join(v + b"\n" for v in lines))
    return {
        "query": query,
        "events": n,
        "rows": rows,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "events_per_core_s": round(n / cpu) if cpu else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main_run(query: str, input_path: str, output_path: str | None, partitions: int) -> int:
    print(json.dumps(run_file(query, input_path, output_path, partitions)))
    return 0


__all__ = ["main_run", "run_file"]
