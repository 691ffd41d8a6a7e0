"""Memory at scale: peak RSS of file runs as the input grows, big RocksDB state, its restore.

    python -m bench scale [--events 1000000,10000000] [--keys 10000000] [--dir /tmp/scale]
                          [--workers 2] [--keep] [--record]

1. **Input size.** For each ``--events`` count, Nexmark events are generated to a JSON-lines
   file (``python -m bench nexmark generate --seed 1``), then ``python -m streams run
   bench.nexmark.queries:q1 --input nexmark=FILE`` runs in a child process: its peak RSS
   (``wait4``), wall and CPU time. Target: the largest run's RSS within 1.5x the smallest's.
2. **Big state.** ``--keys`` distinct keys (each once, in a scattered order) as a JSON-lines
   file through ``python -m streams run bench.scale:keyed_count --input keys=FILE``: a
   ``count`` per key on RocksDB with the worker's default memory bounds (``Config``:
   ``rocksdb_block_cache_bytes``, ``rocksdb_write_buffer_bytes``,
   ``state_cache_max_entries``). Target: peak RSS < 1 GiB.
3. **Restore.** The same store (its ``StoreDef``, its changelog records' bytes) restored into an
   empty RocksDB directory from ``--keys`` changelog records, through the worker's restore
   (``restore_stores`` over a consumer of the embedded broker, ``restore_batch_records`` per
   fetch, progress to the worker's metrics). The changelog is written to the embedded broker
   in chunks of 1M records, each restored (the delta past the store's stored offset) and then
   deleted, so the changelog never is all in memory; only the restores are timed. Target:
   >= 300K records/s.

Generated files are deleted after their run unless ``--keep``. Each step prints a JSON line;
``--record`` appends a table to ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import streams as st
from bench.common import record

ROOT = Path(__file__).resolve().parent.parent
MIB = 1 << 20
_PRIME = 1_000_003  # keys in a scattered order: i * prime mod n visits each once (n not a multiple)


def keyed_count() -> st.Topology:
    """A count per key: the big-state topology (``bench.scale:keyed_count``)."""
    t = st.Topology("scale-keys")
    t.source("keys").count("per-key").to("counts", value=st.serde.INT)
    return t


def _child(cmd: list[str]) -> dict[str, Any]:
    """Run ``cmd`` from the repository root; its peak RSS, wall and CPU seconds."""
    path = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert p.stderr is not None
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{err.decode()[-2000:]}")
    return {
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "wall_s": round(wall, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
    }


def input_size(events: int, directory: Path, workers: int, keep: bool) -> dict[str, Any]:
    path = directory / f"nexmark-{events}.jsonl"
    if not path.exists():
        gen = [sys.executable, "-m", "bench", "nexmark", "generate", "--events", str(events)]
        gen += ["--seed", "1", "--out", str(path), "--workers", str(workers)]
        subprocess.run(gen, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    try:
        cmd = [sys.executable, "-m", "streams", "run", "bench.nexmark.queries:q1"]
        out = _child([*cmd, "--input", f"nexmark={path}"])
    finally:
        if not keep:
            path.unlink()
    return {"step": "input", "events": events, **out}


def write_keys(path: Path, keys: int) -> None:
    step = _PRIME if keys % _PRIME else 7919
    with path.open("w") as f:
        for start in range(0, keys, 100_000):
            f.write(
                "".join(
                    f'{{"key":"k{(i * step) % keys:09d}","value":1}}\n'
                    for i in range(start, min(keys, start + 100_000))
                )
            )


def big_state(keys: int, directory: Path, keep: bool) -> dict[str, Any]:
    path = directory / f"keys-{keys}.jsonl"
    if not path.exists():
        write_keys(path, keys)
    try:
        cmd = [sys.executable, "-m", "streams", "run", "bench.scale:keyed_count"]
        out = _child([*cmd, "--input", f"keys={path}"])
    finally:
        if not keep:
            path.unlink()
    return {"step": "state", "keys": keys, "events_per_s": round(keys / out["wall_s"]), **out}


def restore(keys: int, chunk: int = 1_000_000) -> dict[str, Any]:
    """Restore ``keys`` changelog records of ``keyed_count``'s store (see the module doc)."""
    from state.rocks import RocksDBMemory
    from state.task_state import TaskStores
    from streams.runtime.broker import TopicPartition
    from streams.runtime.config import Config
    from streams.runtime.embedded import EmbeddedBroker
    from streams.runtime.metrics import WorkerMetrics
    from streams.runtime.restore import ConsumerChangelog, restore_stores

    plan = keyed_count().compile()
    (sd,) = [s.definition for sub in plan.subtopologies for s in sub.stores]
    driver = st.TopologyTestDriver(keyed_count())  # a real changelog record's value bytes
    driver.pipe("keys", 1, key="k0")
    value = driver.broker.fetch(TopicPartition(sd.changelog, 0), 0)[0].value
    config = Config()
    memory = RocksDBMemory(config.rocksdb_block_cache_bytes, config.rocksdb_write_buffer_bytes)
    metrics = WorkerMetrics(frozenset())
    broker = EmbeddedBroker()
    broker.create_topic(sd.changelog, 1)
    tp = TopicPartition(sd.changelog, 0)
    ks = sd.key_serde.serialize
    step = _PRIME if keys % _PRIME else 7919
    spent = 0.0
    with tempfile.TemporaryDirectory(prefix="scale-restore-") as state_dir:
        stores = TaskStores([sd], 0, backend="rocksdb", state_dir=state_dir, rocksdb=memory)

        async def replay() -> int:
            reader = broker.consumer(None)
            try:
                changelog = ConsumerChangelog(reader, config.restore_batch_records)
                return await restore_stores(stores, changelog, metrics)
            finally:
                await reader.close()

        done = 0
        for start in range(0, keys, chunk):
            end = min(keys, start + chunk)
            recs = [(ks(f"k{(i * step) % keys:09d}"), value, 0, ()) for i in range(start, end)]
            broker.append_batch(sd.changelog, 0, recs)  # type: ignore[arg-type]
            del recs
            t0 = time.perf_counter()
            done += asyncio.run(replay())
            spent += time.perf_counter() - t0
            broker.delete_records_before(tp, broker.end_offset(tp))
        entries = stores.stores[sd.name].backend.approximate_count()
        stores.close()
    restored = metrics.sample("streams_restored_records_total", {"store": sd.name})
    return {
        "step": "restore",
        "records": done,
        "restored_metric": int(restored or 0),
        "store_entries_estimate": entries,
        "seconds": round(spent, 1),
        "records_per_s": round(done / spent),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def _table(results: list[dict[str, Any]]) -> str:
    rows = [
        "| step | size | peak RSS (MB) | wall (s) | CPU (s) | rate |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        if r["step"] == "input":
            rows.append(
                f"| streams run --input (q1) | {r['events']:,} events | {r['peak_rss_mb']} "
                f"| {r['wall_s']} | {r['cpu_s']} | {round(r['events'] / r['wall_s']):,} ev/s |"
            )
        elif r["step"] == "state":
            rows.append(
                f"| count per key, RocksDB | {r['keys']:,} keys | {r['peak_rss_mb']} "
                f"| {r['wall_s']} | {r['cpu_s']} | {round(r['keys'] / r['wall_s']):,} ev/s |"
            )
        else:
            rows.append(
                f"| restore from changelog | {r['records']:,} records | {r['peak_rss_mb']} "
                f"| {r['seconds']} | | {r['records_per_s']:,} records/s |"
            )
    return "\n".join(rows)


def targets(results: list[dict[str, Any]]) -> list[str]:
    """What the issue asks, met or not."""
    out = []
    runs = sorted((r for r in results if r["step"] == "input"), key=lambda r: r["events"])
    if len(runs) >= 2:
        ratio = runs[-1]["peak_rss_mb"] / runs[0]["peak_rss_mb"]
        ok = "met" if ratio <= 1.5 else "NOT met"
        out.append(
            f"RSS of {runs[-1]['events']:,} events / {runs[0]['events']:,}: {ratio:.2f}x "
            f"(target <= 1.5x: {ok})"
        )
    for r in results:
        if r["step"] == "state":
            ok = "met" if r["peak_rss_mb"] < 1024 else "NOT met"
            out.append(f"RSS at {r['keys']:,} keys: {r['peak_rss_mb']} MB (target < 1024: {ok})")
        if r["step"] == "restore":
            ok = "met" if r["records_per_s"] >= 300_000 else "NOT met"
            out.append(f"restore: {r['records_per_s']:,} records/s (target >= 300,000: {ok})")
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench scale", description=__doc__.split("\n")[0])
    ap.add_argument("--events", default="1000000,10000000", help="event counts, comma-separated")
    ap.add_argument("--keys", type=int, default=10_000_000, help="distinct keys (0: skip)")
    ap.add_argument("--dir", default="/tmp/scale", help="where the input files are written")
    ap.add_argument("--workers", type=int, default=2, help="generator processes")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--skip-restore", action="store_true")
    ap.add_argument("--record", action="store_true", help="append the results to RESULTS.md")
    args = ap.parse_args(argv)
    directory = Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    results = []
    for n in [int(x) for x in args.events.split(",") if x]:
        results.append(input_size(n, directory, args.workers, args.keep))
        print(json.dumps(results[-1]), flush=True)
    if args.keys:
        results.append(big_state(args.keys, directory, args.keep))
        print(json.dumps(results[-1]), flush=True)
        if not args.skip_restore:
            results.append(restore(args.keys))
            print(json.dumps(results[-1]), flush=True)
    lines = targets(results)
    print("\n".join(lines))
    if args.record:
        command = "python -m bench scale " + " ".join(argv)
        body = _table(results) + "\n\n" + "\n".join(f"- {x}" for x in lines)
        record("scale: memory by input size and state size", command, body)
    return 0
