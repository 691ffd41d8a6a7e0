"""State benchmarks: aggregation through the write-back cache, commit cost, changelog restore.

    python -m bench state [--records 1000000] [--keys 100000] [--record]

1. Aggregate updates/s: N records over K keys (Zipf-like skew), ``count`` + ``sum`` per key
   through the real ``AggregateProcessor`` and RocksDB ``TaskStores``, committing every 100K
   records (changelog records produced into a list, stores written back with offsets).
2. Commit cost per 10K dirty keys: ``prepare_commit`` + ``finish_commit`` (one RocksDB write
   batch with the offsets).
3. Restore records/s: a Worker starting on an empty state dir restores a 1M-record changelog
   from the embedded broker (the same code path as a restore from Kafka: fetch, batch, write).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from typing import Any

import streams as st
from bench.common import peak_rss_mb, record
from operators.aggregate import AggregateProcessor
from state.task_state import StoreDef, TaskStores
from streams import agg
from streams.core.serde import KEY, PICKLE
from streams.plan import nodes as plan
from streams.runtime.embedded import EmbeddedBroker


def skewed_keys(n: int, keys: int, seed: int = 1) -> list[str]:
    rnd = random.Random(seed)
    # Zipf-like: a few hot keys, a long tail (rank ~ keys * u^3)
    return [f"k{int(keys * rnd.random() ** 3)}" for _ in range(n)]


def bench_aggregate(n: int, keys: int, state_dir: str) -> dict[str, Any]:
    ts = TaskStores(
        [StoreDef("agg", "kv", "c", KEY, PICKLE)], 0, backend="rocksdb", state_dir=state_dir
    )
    node = plan.Aggregate(
        step="agg",
        parents=("p",),
        single=False,
        aggs=(("n", agg.count()), ("total", agg.sum("eur"))),
        store=plan.StoreSpec("agg"),
    )
    sink: list[Any] = []

    class Drop:
        def process(self, rows: Any) -> None:
            sink.append(len(rows))

    proc = AggregateProcessor(node, ts.kv("agg"), [Drop()])
    ks = skewed_keys(n, keys)
    rows = [(k, {"eur": i % 100}, i, (), i) for i, k in enumerate(ks)]
    changelog = 0
    t0 = time.perf_counter()
    c0 = time.process_time()
    for s in range(0, n, 10_000):
        proc.process(rows[s : s + 10_000])
        if (s + 10_000) % 100_000 == 0:
            for _, _, recs in ts.prepare_commit():
                changelog += len(recs)
            ts.finish_commit({"c": changelog}, {"in": s})
    for _, _, recs in ts.prepare_commit():
        changelog += len(recs)
    ts.finish_commit({"c": changelog}, {"in": n})
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    ts.close()
    return {
        "records": n,
        "keys": len(set(ks)),
        "updates_per_s": round(n / wall),
        "updates_per_cpu_s": round(n / cpu),
        "changelog_records": changelog,
    }


def bench_commit(state_dir: str, dirty: int = 10_000, rounds: int = 5) -> dict[str, Any]:
    ts = TaskStores(
        [StoreDef("c", "kv", "c", KEY, PICKLE)], 0, backend="rocksdb", state_dir=state_dir
    )
    kv = ts.kv("c")
    times = []
    for r in range(rounds):
        for i in range(dirty):
            kv.put(f"key-{r}-{i}", {"n": i, "total": i * 3})
        t0 = time.perf_counter()
        produced = sum(len(recs) for _, _, recs in ts.prepare_commit())
        ts.finish_commit({"c": (r + 1) * dirty}, {"in": r})
        times.append(time.perf_counter() - t0)
        assert produced == dirty
    ts.close()
    return {"dirty_keys": dirty, "commit_ms_median": round(sorted(times)[rounds // 2] * 1000, 2)}


def bench_restore(n: int, state_dir: str) -> dict[str, Any]:
    topo = st.Topology("restore-bench")
    topo.source("in").count("counts").to("out", value=st.serde.INT)
    b = EmbeddedBroker()
    b.create_topic("in", 1)
    b.create_topic("out", 1)
    b.create_topic("restore-bench-counts-changelog", 1, {"cleanup.policy": "compact"})
    enc_k, enc_v = KEY.serialize, PICKLE.serialize
    b.append_batch(
        "restore-bench-counts-changelog",
        0,
        [(enc_k(f"user-{i}"), enc_v(i % 1000), 0, ()) for i in range(n)],
    )
    w = st.Worker(topo, b, st.Config(state_dir=state_dir))
    t0 = time.perf_counter()
    asyncio.run(w.run(until_idle=True))
    wall = time.perf_counter() - t0
    assert w.restored_records == n, w.restored_records
    return {
        "changelog_records": n,
        "restore_s": round(wall, 2),
        "restore_records_per_s": round(n / wall),
    }


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench state")
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args(argv)
    import gc

    gc.set_threshold(*st.Config().gc_threshold)  # type: ignore[misc]
    with (
        tempfile.TemporaryDirectory() as d1,
        tempfile.TemporaryDirectory() as d2,
        tempfile.TemporaryDirectory() as d3,
    ):
        a = bench_aggregate(args.records, args.keys, d1)
        c = bench_commit(d2)
        r = bench_restore(args.records, d3)
    stats = {"aggregate": a, "commit": c, "restore": r, "peak_rss_mb": round(peak_rss_mb())}
    print(json.dumps(stats))
    if args.record:
        body = (
            "| measure | result |\n|---|---:|\n"
            f"| aggregate updates/s ({a['records']:,} records, {a['keys']:,} distinct keys, "
            f"skewed; count+sum; RocksDB) | {a['updates_per_s']:,} |\n"
            f"| changelog records produced (commit every 100K records) | "
            f"{a['changelog_records']:,} |\n"
            f"| commit of {c['dirty_keys']:,} dirty keys (changelog records + one write batch) "
            f"| {c['commit_ms_median']} ms |\n"
            f"| restore from a {r['changelog_records']:,}-record changelog (worker start, "
            f"embedded broker, RocksDB) | {r['restore_records_per_s']:,} records/s "
            f"({r['restore_s']} s) |\n"
        )
        record(
            "state: aggregation, commit, restore",
            f"python -m bench state --records {args.records} --keys {args.keys} --record",
            body,
        )
    return 0
