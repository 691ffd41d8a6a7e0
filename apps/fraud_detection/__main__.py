"""Run the fraud-detection demo: ``python -m apps.fraud_detection [--transactions N]``.

Generates card transactions with injected, labelled fraud, starts the risk model's HTTP
service (aiohttp, in this process, on 127.0.0.1 and a free port), runs the topology on the
embedded broker (or on Kafka with ``--bootstrap``, with ``--workers N`` worker processes),
prints alerts with the model's risk as they fire, and ends with a summary: throughput, alerts
per rule, precision / recall against the ground truth, and the model's mean risk per rule.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import sys
import tempfile
import time
from typing import Any

import streams as st
from apps.fraud_detection.generator import Dataset, generate
from apps.fraud_detection.model import ModelClient, ModelService
from apps.fraud_detection.topology import (
    ALERTS,
    BLOCKLIST,
    MODEL_URL_ENV,
    TRANSACTIONS,
    build_topology,
)
from apps.workers import parse_run_args, run_workers
from streams.core.partitioner import partition_for
from streams.runtime.broker import Broker, TopicPartition, TopicSpec

DLQ = "fraud-detector-dlq"  # the topology's dead-letter topic ("{prefix}fraud-detector-dlq")

SHOW_FIRST = 12


def score(
    ds: Dataset, alerts: list[dict[str, Any]]
) -> list[tuple[str, int, int, float, float, str]]:
    """Per rule: (rule, alerts, fraudulent tx, precision, recall, episodes caught)."""
    flagged: dict[str, set[str]] = collections.defaultdict(set)
    for a in alerts:
        flagged[a["rule"]].add(a["tx_id"])
    truth: dict[str, set[str]] = collections.defaultdict(set)
    for tx_id, pattern in ds.fraud.items():
        truth[pattern].add(tx_id)
    rows = []
    all_flagged = set().union(*flagged.values()) if flagged else set()
    for rule in sorted(truth):
        got, want = flagged.get(rule, set()), truth[rule]
        tp = len(got & want)
        eps = [e for e in ds.episodes if e["pattern"] == rule]
        caught = sum(1 for e in eps if set(e["tx_ids"]) & all_flagged)
        rows.append(
            (
                rule,
                len(got),
                len(want),
                tp / len(got) if got else 0.0,
                tp / len(want) if want else 0.0,
                f"{caught}/{len(eps)}",
            )
        )
    every = set(ds.fraud)
    tp = len(all_flagged & every)
    rows.append(
        (
            "all rules",
            len(all_flagged),
            len(every),
            tp / max(len(all_flagged), 1),
            tp / max(len(every), 1),
            f"{sum(1 for e in ds.episodes if set(e['tx_ids']) & all_flagged)}/{len(ds.episodes)}",
        )
    )
    return rows


def print_summary(
    n: int, seconds: float, rows: list[tuple[str, int, int, float, float, str]]
) -> None:
    print(f"\n{n:,} transactions in {seconds:.2f} s: {n / seconds:,.0f} transactions/s\n")
    print(
        f"{'rule':22s} {'alerts':>7s} {'fraud tx':>9s} {'precision':>10s} {'recall':>7s} "
        f"{'incidents caught':>17s}"
    )
    for rule, alerts, fraud, p, r, eps in rows:
        print(f"{rule:22s} {alerts:7d} {fraud:9d} {p:10.2f} {r:7.2f} {eps:>17s}")


def print_risk(alerts: list[dict[str, Any]]) -> None:
    """The model's mean risk per rule (every alert went through the model service)."""
    by_rule: dict[str, list[float]] = collections.defaultdict(list)
    for a in alerts:
        by_rule[a["rule"]].append(a["risk"])
    means = ", ".join(f"{r} {sum(v) / len(v):.2f}" for r, v in sorted(by_rule.items()))
    print(f"\nmodel risk, mean per rule: {means}")


def _records(ds: Dataset, partitions: int) -> tuple[dict[int, list[Any]], dict[int, list[Any]]]:
    enc = st.serde.JSON.serialize
    blocked: dict[int, list[Any]] = collections.defaultdict(list)
    for m in sorted(ds.blocklist):
        kb = m.encode()
        blocked[partition_for(kb, partitions)].append((kb, enc({"blocked": True}), 0, ()))
    txs: dict[int, list[Any]] = collections.defaultdict(list)
    bad = dict(zip(ds.malformed_positions, ds.malformed, strict=True))
    for i, tx in enumerate(ds.transactions):
        if i in bad:  # malformed input, as a broken producer would send it: dead-lettered
            txs[i % partitions].append((None, bad[i], tx["ts"], ()))
        kb = tx["card_id"].encode()
        txs[partition_for(kb, partitions)].append((kb, enc(tx), tx["ts"], ()))
    return blocked, txs


def show_alerts() -> Any:
    """``show(key, alert)``: prints the first alerts, then a note."""
    shown = 0

    def show(_key: Any, alert: dict[str, Any]) -> None:
        nonlocal shown
        shown += 1
        if shown <= SHOW_FIRST:
            print(
                f"ALERT {alert['rule']:21s} {alert['card_id']} {alert['tx_id']} "
                f"risk={alert['risk']:.2f}  {alert['reason']}"
            )
        elif shown == SHOW_FIRST + 1:
            print("... (more alerts: see the summary)")

    return show


async def run(
    ds: Dataset,
    broker: Broker,
    partitions: int,
    state_dir: str | None,
    prefix: str = "",
    workers: int = 1,
    bootstrap: str | None = None,
) -> float:
    await broker.create_topics(
        [  # no time retention: it would go by the records' (2024) event times
            TopicSpec(prefix + t, partitions, {"retention.ms": "-1"})
            for t in (TRANSACTIONS, BLOCKLIST, ALERTS)
        ]
    )
    producer = broker.producer()
    blocked, txs = _records(ds, partitions)
    for topic, parts in ((BLOCKLIST, blocked), (TRANSACTIONS, txs)):
        for p, recs in parts.items():
            producer.send_batch(prefix + topic, p, recs)
        await producer.flush()
    await producer.close()
    show = show_alerts()
    async with ModelService() as model:
        print(f"risk model service on {model.url}")
        if workers > 1:  # `streams run --workers N` in a consumer group; we tail the alerts
            assert bootstrap is not None
            os.environ[MODEL_URL_ENV] = model.url  # (the workers call this process's service)
            return await run_workers(
                "apps.fraud_detection.topology:from_env",
                bootstrap,
                workers,
                state_dir or tempfile.mkdtemp(prefix="fraud-detector-"),
                prefix,
                tail=(broker, prefix + ALERTS, partitions, show),
            )
        client = ModelClient(model.url)
        topo = build_topology(prefix=prefix, model=client)
        topo.stream("model-risk").peek(show, name="print-alerts")
        config = st.Config(
            state_dir=state_dir, state_backend="memory" if state_dir is None else "rocksdb"
        )
        worker = st.Worker(topo, broker, config)
        t0 = time.perf_counter()
        try:
            await worker.run(until_idle=True, end_of_input=True)
        finally:
            await client.close()
        seconds = time.perf_counter() - t0
        print(f"(the model scored {model.requests:,} alerts)")
        return seconds


async def read_alerts(broker: Broker, partitions: int, topic: str = ALERTS) -> list[dict[str, Any]]:
    c = broker.consumer(None)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    c.assign(tps)
    for tp in tps:
        c.seek(tp, 0)
    ends = await c.end_offsets(tps)
    out: list[dict[str, Any]] = []
    while any(c.position(tp) < ends[tp] for tp in tps):
        for msgs in (await c.getmany(timeout_ms=500)).values():
            for m in msgs:
                value = m[1] if isinstance(m, tuple) else m.value
                out.append(st.serde.JSON.deserialize(value))
    await c.close()
    return out


async def count_records(broker: Broker, topic: str, partitions: int) -> int:
    c = broker.consumer(None)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    ends = await c.end_offsets(tps)
    await c.close()
    return sum(ends.values())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m apps.fraud_detection", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--transactions", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument(
        "--malformed-rate",
        type=float,
        default=0.001,
        help="share of malformed records (they go to the dead-letter topic)",
    )
    args = parse_run_args(ap, argv)

    t0 = time.perf_counter()
    ds = generate(args.transactions, seed=args.seed, malformed_rate=args.malformed_rate)
    print(
        f"generated {len(ds.transactions):,} transactions ({len(ds.fraud):,} fraudulent, "
        f"{len(ds.blocklist)} blocklisted merchants) in {time.perf_counter() - t0:.1f} s"
    )
    broker: Broker
    if args.bootstrap:
        from streams.runtime.kafka import KafkaBroker

        broker = KafkaBroker(args.bootstrap)
    else:
        broker = st.EmbeddedBroker(default_partitions=args.partitions)

    async def go() -> tuple[float, list[dict[str, Any]], int]:
        seconds = await run(
            ds,
            broker,
            args.partitions,
            args.state_dir,
            args.prefix,
            args.workers,
            args.bootstrap,
        )
        alerts = await read_alerts(broker, args.partitions, args.prefix + ALERTS)
        dead = await count_records(broker, args.prefix + DLQ, 1)
        await broker.close()
        return seconds, alerts, dead

    seconds, alerts, dead = asyncio.run(go())
    print_summary(len(ds.transactions), seconds, score(ds, alerts))
    print_risk(alerts)
    print(
        f"\n{dead} malformed records went to the dead-letter topic "
        f"'{args.prefix}{DLQ}' ({len(ds.malformed)} were injected)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
