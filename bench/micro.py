"""A 5-step stateless chain over N records on the embedded runtime, against a hand-inlined loop.

Both sides do the same work per record: decode JSON, filter, add a column, filter, re-key,
project, encode JSON and append to a log. The engine side runs the real ``Worker`` over the
embedded broker (fetch, queues, fused chain, sink, commits); the inlined side is the best a
person could write by hand in one Python loop. A second pair compares the fused chain alone
with the same loop over already-decoded rows (no serdes), which isolates the engine overhead.

    python -m bench micro [--records 1000000] [--record]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
from typing import Any

import msgspec

import streams as st
from bench.common import peak_rss_mb, record, timed
from streams.runtime.broker import TopicPartition
from streams.runtime.embedded import EmbeddedBroker

COUNTRIES = ["NL", "DE", "FR", "US"]


def topology() -> st.Topology:
    t = st.Topology("micro")
    (
        t.source("in")
        .filter(st.col("amount") > 100)
        .with_columns(cents=st.col("amount") * 100)
        .filter(st.col("country") != "US")
        .key_by("user")
        .select("user", "cents", "country")
        .to("out")
    )
    return t


def payloads(n: int) -> list[bytes]:
    enc = msgspec.json.Encoder().encode
    return [
        enc({"user": f"u{i % 10_000}", "amount": i % 1000, "country": COUNTRIES[i % 4], "ts": i})
        for i in range(n)
    ]


def run_engine(data: list[bytes]) -> tuple[int, float, float]:
    b = EmbeddedBroker()
    b.create_topic("in", 1)
    b.create_topic("out", 1)
    b.append_batch("in", 0, [(None, v, i, ()) for i, v in enumerate(data)])
    w = st.Worker(topology(), b)
    gc.collect()
    _, wall, cpu = timed(lambda: asyncio.run(w.run(until_idle=True)))
    return b.end_offset(TopicPartition("out", 0)), wall, cpu


def inlined(data: list[bytes], batch: int = 10_000) -> tuple[int, float, float]:
    dec, enc = msgspec.json.Decoder().decode, msgspec.json.Encoder().encode
    log: list[tuple[Any, ...]] = []

    def go() -> None:
        for s in range(0, len(data), batch):
            out = []
            for i, raw in enumerate(data[s : s + batch], s):
                v = dec(raw)
                amount = v.get("amount")
                if amount is None or not amount > 100:
                    continue
                v = {**v, "cents": amount * 100}
                if v.get("country") == "US":
                    continue
                k = v.get("user")
                v = {"user": v.get("user"), "cents": v.get("cents"), "country": v.get("country")}
                out.append((k.encode(), enc(v), i, (), len(log) + len(out)))
            log.extend(out)

    gc.collect()
    _, wall, cpu = timed(go)
    return len(log), wall, cpu


def chain_only(data: list[bytes]) -> tuple[float, float]:
    """Records/s of the fused chain vs the same logic inlined, both over decoded rows."""
    dec = msgspec.json.Decoder().decode
    rows = [(None, dec(v), i, (), i) for i, v in enumerate(data)]
    segs = topology().compile().subtopologies[0].segments
    chain = next(s.chain for s in segs.values() if s.chain is not None)
    assert chain is not None

    def fused() -> None:
        for s in range(0, len(rows), 10_000):
            chain(rows[s : s + 10_000])

    def loop() -> None:
        for s in range(0, len(rows), 10_000):
            out = []
            for k, v, t, h, o in rows[s : s + 10_000]:
                amount = v.get("amount")
                if amount is None or not amount > 100:
                    continue
                v = {**v, "cents": amount * 100}
                if v.get("country") == "US":
                    continue
                k = v.get("user")
                v = {"user": v.get("user"), "cents": v.get("cents"), "country": v.get("country")}
                out.append((k, v, t, h, o))

    _, f_wall, _ = timed(fused)
    _, l_wall, _ = timed(loop)
    return len(rows) / f_wall, len(rows) / l_wall


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench micro")
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs per side; the best is kept")
    ap.add_argument("--record", action="store_true", help="append the result to bench/RESULTS.md")
    args = ap.parse_args(argv)
    data = payloads(args.records)
    # the worker runs with Config.gc_threshold; give the hand-written loop the same GC setting
    gc.set_threshold(*st.Config().gc_threshold)  # type: ignore[misc]
    eng = min((run_engine(data) for _ in range(args.repeat)), key=lambda r: r[2])
    inl = min((inlined(data) for _ in range(args.repeat)), key=lambda r: r[2])
    assert eng[0] == inl[0], f"engine wrote {eng[0]} records, inlined loop {inl[0]}"
    fused_rps, loop_rps = max(
        (chain_only(data) for _ in range(args.repeat)), key=lambda r: r[0] / r[1]
    )
    n = args.records
    stats = {
        "records": n,
        "outputs": eng[0],
        "engine_records_per_s": round(n / eng[1]),
        "engine_records_per_cpu_s": round(n / eng[2]),
        "inlined_records_per_cpu_s": round(n / inl[2]),
        "ratio_engine_to_inlined": round(inl[2] / eng[2], 3),
        "chain_only_records_per_s": round(fused_rps),
        "chain_only_inlined_records_per_s": round(loop_rps),
        "ratio_chain_to_inlined": round(fused_rps / loop_rps, 3),
        "peak_rss_mb": round(peak_rss_mb()),
    }
    print(json.dumps(stats))
    if args.record:
        body = (
            "| measure | records/s per core | ratio to inlined loop |\n|---|---:|---:|\n"
            f"| end to end (decode, 5 steps, encode, log) — engine | "
            f"{stats['engine_records_per_cpu_s']:,} | {stats['ratio_engine_to_inlined']} |\n"
            f"| end to end — hand-inlined loop | {stats['inlined_records_per_cpu_s']:,} | 1 |\n"
            f"| fused chain only (decoded rows) | {stats['chain_only_records_per_s']:,} | "
            f"{stats['ratio_chain_to_inlined']} |\n"
            f"| same logic inlined | {stats['chain_only_inlined_records_per_s']:,} | 1 |\n\n"
            f"{n:,} records, {eng[0]:,} outputs; best of {args.repeat}; peak RSS "
            f"{stats['peak_rss_mb']} MB.\n"
        )
        record(
            "micro: 5-step stateless chain", f"python -m bench micro --records {n} --record", body
        )
    return 0
