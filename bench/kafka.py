"""Kafka -> stateless topology -> Kafka, against the transport's own ceiling, in one run.

    python -m bench kafka [--bootstrap HOST:PORT] [--records 500000] [--partitions 4] [--record]

Without ``--bootstrap`` a broker is started with ``scripts/kafka/kafka`` (and stopped after).
The input topic is filled once; then, each from the start of the input with a fresh group:

* **raw**: the transport alone, a consumer (``getmany``) feeding a batched producer with the
  same bytes: the ceiling any engine on this client and broker can reach;
* **engine**: a ``Worker`` running decode -> filter -> map_values -> encode -> sink, under
  at-least-once and under exactly-once (per-task transactions, 100 ms commits).

The ratio engine/raw is what matters; absolute numbers move with the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import msgspec

import streams as st
from bench.common import record
from streams.core.partitioner import partition_for
from streams.runtime.broker import TopicPartition, TopicSpec
from streams.runtime.kafka import KafkaBroker

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "kafka" / "kafka"


async def fill(b: KafkaBroker, topic: str, n: int, partitions: int) -> None:
    p = b.producer()
    enc = msgspec.json.Encoder().encode
    now = int(time.time() * 1000)
    for s in range(0, n, 50_000):
        buckets: dict[int, list] = {}
        for i in range(s, min(n, s + 50_000)):
            k = f"user-{i % 10_000}".encode()
            v = enc({"user": f"user-{i % 10_000}", "amount": i % 1000, "country": "NL"})
            buckets.setdefault(partition_for(k, partitions), []).append((k, v, now, ()))
        for part, recs in buckets.items():
            p.send_batch(topic, part, recs)
        await p.flush()
    await p.close()


async def raw(b: KafkaBroker, src: str, dst: str, n: int, partitions: int) -> float:
    c = b.consumer(None)
    tps = [TopicPartition(src, p) for p in range(partitions)]
    c.assign(tps)
    for tp in tps:
        c.seek(tp, 0)
    p = b.producer()
    t0 = time.perf_counter()
    seen = 0
    while seen < n:
        for tp, msgs in (await c.getmany(timeout_ms=500, max_records=10_000)).items():
            p.send_batch(dst, tp.partition, [(m.key, m.value, m.timestamp, ()) for m in msgs])
            seen += len(msgs)
    await p.flush()
    dt = time.perf_counter() - t0
    await p.close()
    await c.close()
    return n / dt


def topology(app: str, src: str, dst: str) -> st.Topology:
    t = st.Topology(app)
    (
        t.source(src)
        .filter(st.col("amount") >= 0)
        .map_values(lambda v: {**v, "cents": v["amount"] * 100})
        .to(dst)
    )
    return t


async def engine(b: KafkaBroker, src: str, dst: str, n: int, guarantee: str) -> tuple[float, float]:
    """records/s from the first processed batch to the end, and the start-up (group join) s."""
    w = st.Worker(
        topology(f"bench-{uuid.uuid4().hex[:6]}", src, dst),
        b,
        st.Config(processing_guarantee=guarantee, state_backend="memory"),
    )  # type: ignore[arg-type]
    t0 = time.monotonic()
    await w.run(until_idle=True)
    end = time.monotonic()
    assert w.processed == n, (w.processed, n)
    assert w.first_batch_at is not None
    return n / (end - w.first_batch_at), w.first_batch_at - t0


async def run_all(bootstrap: str, n: int, partitions: int) -> dict[str, float]:
    b = KafkaBroker(bootstrap)
    tag = uuid.uuid4().hex[:6]
    src, out1, out2, out3 = (f"bench-{x}-{tag}" for x in ("in", "raw", "alos", "eos"))
    await b.create_topics([TopicSpec(t, partitions) for t in (src, out1, out2, out3)])
    await fill(b, src, n, partitions)
    alos, alos_start = await engine(b, src, out2, n, "at_least_once")
    eos, eos_start = await engine(b, src, out3, n, "exactly_once")
    res = {
        "raw_records_per_s": await raw(b, src, out1, n, partitions),
        "at_least_once_records_per_s": alos,
        "exactly_once_records_per_s": eos,
        "startup_s_at_least_once": alos_start,
        "startup_s_exactly_once": eos_start,
    }
    await b.close()
    return res


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench kafka")
    ap.add_argument("--bootstrap")
    ap.add_argument("--records", type=int, default=500_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args(argv)
    home = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        home = tempfile.mkdtemp(prefix="bench-kafka-")
        bootstrap = subprocess.run(
            [sys.executable, str(SCRIPT), "start", "--home", home],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    try:
        res = asyncio.run(run_all(bootstrap, args.records, args.partitions))
    finally:
        if home is not None:
            subprocess.run(
                [sys.executable, str(SCRIPT), "stop", "--home", home],
                check=False,
                capture_output=True,
            )
    raw_rps = res["raw_records_per_s"]
    stats: dict[str, float] = {k: round(v) for k, v in res.items()}
    stats["startup_s_at_least_once"] = round(res["startup_s_at_least_once"], 2)
    stats["startup_s_exactly_once"] = round(res["startup_s_exactly_once"], 2)
    stats["ratio_at_least_once"] = round(res["at_least_once_records_per_s"] / raw_rps, 3)
    stats["ratio_exactly_once"] = round(res["exactly_once_records_per_s"] / raw_rps, 3)
    print(json.dumps(stats))
    if args.record:
        body = (
            "| path | records/s | ratio to raw |\n|---|---:|---:|\n"
            "| raw transport (getmany -> batched produce, no decode) | "
            f"{stats['raw_records_per_s']:,} | 1 |\n"
            f"| engine, at-least-once | {stats['at_least_once_records_per_s']:,} | "
            f"{stats['ratio_at_least_once']} |\n"
            f"| engine, exactly-once | {stats['exactly_once_records_per_s']:,} | "
            f"{stats['ratio_exactly_once']} |\n\n"
            f"{args.records:,} JSON records, {args.partitions} partitions, one process, a "
            "single-node Kafka 3.9.2 broker on the same 2 cores (it competes for CPU). Engine "
            "rates run from its first processed batch; the group join before it took "
            f"{stats['startup_s_at_least_once']} s (at-least-once) and "
            f"{stats['startup_s_exactly_once']} s (exactly-once).\n"
        )
        record(
            "kafka: Kafka -> stateless topology -> Kafka",
            f"python -m bench kafka --records {args.records} --partitions {args.partitions} "
            "--record",
            body,
        )
    return 0
