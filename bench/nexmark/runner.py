"""``python -m bench nexmark run``: a query over a JSONL file on the embedded runtime.

The events are loaded into the in-process broker, a ``Worker`` runs the query until the input
is consumed, then event time goes to the end so every window closes (Nexmark's "watermark to
infinity"); result rows go to ``--output`` as JSON lines and a JSON line of stats is printed. An
updating query's (:data:`bench.nexmark.queries.UPDATING`) upserts are reduced to its result
first, the final value per key (:func:`bench.nexmark.queries.final_rows`; after the run).

Without ``--output`` the result goes to a blackhole (:class:`streams.core.serde.Discard`, Nexmark's
``blackhole`` sink): rows are counted, not encoded, in both modes, so a throughput run measures
the query. (With a JSON sink, row mode encodes dicts with msgspec and columnar mode encodes
columns with Arrow string kernels: two different encoders, not the query.)
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

import streams as st
from bench.nexmark import queries_time
from bench.nexmark.base import MODE
from bench.nexmark.queries import FILE_OUTPUT, INPUT, OUTPUT, QUERIES, UPDATING, final_rows
from bench.nexmark.queries_misc import side_inputs
from streams.core.serde import Discard
from streams.plan import nodes as plan
from streams.runtime.broker import TopicPartition
from streams.runtime.embedded import EmbeddedBroker


def _blackhole(topo: st.Topology) -> Discard:
    """Point the query's result sink(s) at a blackhole; returns it (its ``count``: the rows)."""
    bh = Discard()
    for n in topo.nodes:
        if isinstance(n, plan.Sink) and n.topic == OUTPUT:
            topo.builder.replace(dataclasses.replace(n, value_serde=bh))
    return bh


def _warm_up() -> None:
    """Import what either mode imports lazily on its first batch (Arrow's JSON reader and its
    group-by engine, ~0.3 s of CPU here) or on first use (``st.run_bounded`` is a lazy
    attribute: the runtime's modules): a one-off cost of a process, not per-event work, so
    neither mode's timing includes it."""
    assert st.run_bounded is not None
    import pyarrow.acero  # type: ignore[import-untyped]
    import pyarrow.json  # type: ignore[import-untyped]  # noqa: F401

    import operators.arrow_json  # noqa: F401


def run_file(
    query: str,
    input_path: str,
    output_path: str | None,
    partitions: int = 1,
    mode: str = "auto",
    from_arrow: bool = False,
) -> dict[str, Any]:
    """Run ``query`` over the JSONL file ``input_path``; its rows to ``output_path`` (JSON
    lines; None: a blackhole), and the run's stats. A :data:`FILE_OUTPUT` query writes its
    files into a temporary directory, read back into ``output_path`` after the run (the
    timing covers writing the files, not reading them back) and deleted."""
    if query not in FILE_OUTPUT:
        return _run_file(query, input_path, output_path, partitions, mode, from_arrow)
    out = tempfile.mkdtemp(prefix=f"nexmark-{query}-")
    try:
        with queries_time.output_dir(out):
            stats = _run_file(query, input_path, None, partitions, mode, from_arrow)
        rows = queries_time.read_files(out)
        if output_path:
            enc = msgspec.json.Encoder()
            Path(output_path).write_bytes(b"".join(enc.encode(r) + b"\n" for r in rows))
        return {**stats, "sink": "parquet", "rows": len(rows)}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _run_file(
    query: str,
    input_path: str,
    output_path: str | None,
    partitions: int = 1,
    mode: str = "auto",
    from_arrow: bool = False,
) -> dict[str, Any]:
    if query not in QUERIES:
        raise SystemExit(f"unknown query {query!r}; have {', '.join(sorted(QUERIES))}")
    MODE["execution"] = mode
    if from_arrow:
        return _run_arrow(query, input_path, output_path, mode)
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
    try:
        topo = QUERIES[query]()
    finally:
        MODE["execution"] = "auto"
    bh = None if output_path else _blackhole(topo)
    for node, records in side_inputs(topo):  # bounded side tables (q13), loaded first
        b.create_topic(node.topic, 1)
        enc = [(node.key_serde.serialize(k), node.value_serde.serialize(v)) for k, v in records]
        b.append_batch(node.topic, 0, [(k, v, 0, ()) for k, v in enc])
    worker = st.Worker(topo, b, st.Config(state_backend="memory"))
    _warm_up()
    c0, t0 = time.process_time(), time.perf_counter()
    asyncio.run(worker.run(until_idle=True, end_of_input=True))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    out = [
        (m[0], m[1]) for p in range(partitions) for m in b.fetch_raw(TopicPartition(OUTPUT, p), 0)
    ]
    lines = _result(query, out)
    rows = len(lines) if bh is None else bh.count
    if output_path:
        Path(output_path).write_bytes(b"".join(v + b"\n" for v in lines))
    return {
        "query": query,
        "mode": mode,
        "sink": "json" if bh is None else "blackhole",
        "events": n,
        "rows": rows,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "events_per_core_s": round(n / cpu) if cpu else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def _result(query: str, records: list[tuple[bytes | None, bytes | None]]) -> list[bytes]:
    """The output's JSON lines: its values, or an updating query's final value per key."""
    if query not in UPDATING:
        return [v for _, v in records if v is not None]
    dec, enc = msgspec.json.Decoder(), msgspec.json.Encoder()
    decoded = [(dec.decode(k), None if v is None else dec.decode(v)) for k, v in records]
    return [enc.encode(r) for r in final_rows(decoded)]


def _run_arrow(query: str, input_path: str, output_path: str | None, mode: str) -> dict[str, Any]:
    """The engine without JSON decoding: the events are read into an Arrow table first (not
    timed; the fields the query's source declares), then a bounded run feeds it in 10K-row
    batches (row mode converts each batch to dicts at the source; columnar mode runs
    expression chains and window aggregations on it)."""
    import pyarrow.json as pj  # type: ignore[import-untyped]

    try:
        topo = QUERIES[query]()
    finally:
        MODE["execution"] = "auto"
    if side_inputs(topo):
        raise SystemExit(f"{query}: a query with a side table does not run from Arrow")
    # the fields of the query's event type, both modes
    (schema,) = [
        n.value_serde.record.arrow_schema()  # type: ignore[union-attr]
        for n in topo.nodes
        if isinstance(n, plan.Source)
    ]
    bh = None if output_path else _blackhole(topo)
    opts = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    # (one chunk: the bounded run's batches are then 10K rows, as the JSON runs' fetches; the
    # reader's own 1 MB blocks would give ~3.7K-row batches and per-batch costs twice over)
    table = pj.read_json(input_path, parse_options=opts).combine_chunks()
    topo.compile()
    _warm_up()
    c0, t0 = time.process_time(), time.perf_counter()
    out = st.run_bounded(topo, {INPUT: table}, batch_size=10_000, raw=True).get(OUTPUT, [])
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    lines = _result(query, [(k, v) for k, v, _ in out])
    if output_path:
        Path(output_path).write_bytes(b"".join(v + b"\n" for v in lines))
    n = table.num_rows
    return {
        "query": query,
        "mode": mode,
        "input": "arrow",
        "sink": "json" if bh is None else "blackhole",
        "events": n,
        "rows": len(lines) if bh is None else bh.count,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "events_per_core_s": round(n / cpu) if cpu else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main_run(
    query: str,
    input_path: str,
    output_path: str | None,
    partitions: int,
    mode: str = "auto",
    from_arrow: bool = False,
) -> int:
    print(json.dumps(run_file(query, input_path, output_path, partitions, mode, from_arrow)))
    return 0


__all__ = ["main_run", "run_file"]
