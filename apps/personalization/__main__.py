"""Run the personalization demo: ``python -m apps.personalization [--events N]``.

Generates a clickstream and a product catalog, runs the topology on the embedded broker (or on
Kafka with ``--bootstrap``, with ``--workers N`` worker processes), prints recommendations as
they fire, and ends with a summary: throughput, sessions against the true ones, recommendations
emitted, and their quality against the generator's ground truth next to a popularity baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import sys
import tempfile
import time
from typing import Any

import streams as st
from apps.personalization.evaluate import Measure, cutoff_ms, quality, recommendations_at
from apps.personalization.generator import DEFAULT_START_MS, Clickstream, generate
from apps.personalization.topology import TOP_N, build_topology, topics
from apps.workers import parse_run_args, read_topic, run_workers
from streams.core.partitioner import partition_for
from streams.runtime.broker import Broker, TopicSpec

SHOW_FIRST = 8


class Shower:
    """Prints the first recommendations as they fire."""

    def __init__(self, limit: int = SHOW_FIRST) -> None:
        self.limit, self.shown = limit, 0

    def __call__(self, user: Any, rec: dict[str, Any]) -> None:
        self.shown += 1
        if self.shown <= self.limit:
            when = dt.datetime.fromtimestamp(rec["ts"] / 1000, dt.UTC).strftime("%H:%M:%S")
            items = ", ".join(f"{i['product_id']} ({i['category']})" for i in rec["items"][:4])
            print(f"REC {user} @{when}  {items}, ... ({len(rec['items'])} items)")
        elif self.shown == self.limit + 1:
            print("... (more recommendations: see the summary)")


async def produce(cs: Clickstream, broker: Broker, names: dict[str, str], partitions: int) -> None:
    """Create the topics; write the catalog (compacted) and the clicks, keyed like Kafka."""
    await broker.create_topics(
        [
            TopicSpec(names["catalog"], 1, {"cleanup.policy": "compact"}),
            *(  # no time retention: it would go by the records' event times
                TopicSpec(names[t], partitions, {"retention.ms": "-1"})
                for t in ("events", "trending", "sessions", "recommendations")
            ),
        ]
    )
    enc = st.serde.JSON.serialize
    producer = broker.producer()
    catalog: list[Any] = [
        (r["product_id"].encode(), enc(r), ts, ()) for ts, r in cs.catalog_records()
    ]
    producer.send_batch(names["catalog"], 0, catalog)
    clicks: dict[int, list[Any]] = collections.defaultdict(list)
    for e in cs.events:
        kb = e["user_id"].encode()
        clicks[partition_for(kb, partitions)].append((kb, enc(e), e["ts"], ()))
    for p, recs in clicks.items():
        producer.send_batch(names["events"], p, recs)
    await producer.flush()
    await producer.close()


async def run_here(broker: Broker, prefix: str, state_dir: str | None, show: Shower) -> float:
    """One worker in this process, to the end of the input (every session closes)."""
    topo = build_topology(prefix=prefix)
    topo.stream("recommend").peek(show, name="print-recommendations")
    config = st.Config(
        state_dir=state_dir, state_backend="memory" if state_dir is None else "rocksdb"
    )
    t0 = time.perf_counter()
    await st.Worker(topo, broker, config).run(until_idle=True, end_of_input=True)
    return time.perf_counter() - t0


def print_summary(
    cs: Clickstream,
    seconds: float,
    sessions: list[tuple[Any, Any, int]],
    recs: list[tuple[Any, Any, int]],
    trending: int,
    measures: list[Measure],
    cutoff: int,
) -> None:
    n = len(cs.events)
    true_sessions = {(u, s, e) for u, ss in cs.sessions.items() for s, e in ss}
    found = {(k, v["window_start"], v["window_end"]) for k, v, _ in sessions}
    users = len({k for k, _, _ in recs})
    print(f"\n{n:,} events in {seconds:.2f} s: {n / seconds:,.0f} events/s\n")
    print(
        f"{'sessions':34s} {len(found):>9,}  ({len(found & true_sessions):,} of the "
        f"{len(true_sessions):,} true sessions found exactly)"
    )
    print(
        f"{'recommendations emitted':34s} {len(recs):>9,}  (to {users:,} of "
        f"{len(cs.user_preferences):,} users)"
    )
    print(f"{'trending windows emitted':34s} {trending:>9,}")
    when = dt.datetime.fromtimestamp(cutoff / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M")
    print(f"\nquality of the top-{TOP_N} at {when} (80% of the events) against what came after")
    print(f"{'measure':34s} {'users':>9s} {'streaming':>10s} {'popularity':>11s}")
    for m in measures:
        print(f"{m.name:34s} {m.users:9,d} {m.app_rate:10.2f} {m.baseline_rate:11.2f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m apps.personalization", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--events", type=int, default=60_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--users", type=int, help="default: events / 40, between 50 and 5,000")
    ap.add_argument("--products", type=int, default=2_000)
    args = parse_run_args(ap, argv)
    users = args.users or max(50, min(5_000, args.events // 40))

    t0 = time.perf_counter()
    start = DEFAULT_START_MS
    if args.bootstrap:  # recent event times: window changelogs expire by time (a day + window)
        start = int(time.time()) // 3600 * 3_600_000 - 12 * 3_600_000
    cs = generate(args.events, seed=args.seed, users=users, products=args.products, start_ms=start)
    print(
        f"generated {len(cs.events):,} events of {users:,} users over "
        f"{(cs.end_ms - cs.start_ms) / 3_600_000:.1f} h, {len(cs.catalog):,} products "
        f"(+{len(cs.catalog_updates)} catalog updates) in {time.perf_counter() - t0:.1f} s"
    )
    names = topics(args.prefix)
    broker: Broker
    if args.bootstrap:
        from streams.runtime.kafka import KafkaBroker

        broker = KafkaBroker(args.bootstrap)
    else:
        broker = st.EmbeddedBroker(default_partitions=args.partitions)
    show = Shower()

    async def go() -> tuple[float, list[Any], list[Any], list[Any]]:
        await produce(cs, broker, names, args.partitions)
        if args.workers > 1:
            state_dir = args.state_dir or tempfile.mkdtemp(prefix="personalization-")
            seconds = await run_workers(
                "apps.personalization.topology:from_env",
                args.bootstrap,
                args.workers,
                state_dir,
                args.prefix,
                tail=(broker, names["recommendations"], args.partitions, show),
            )
            # `streams run --until-idle` stops without ending event time, and a task that
            # moved between workers restarts its watermark from its changelog (at the minimum)
            # until new input comes: one more worker here ends event time for every task
            print(f"workers done in {seconds:.1f} s; ending event time in this process")
            seconds += await run_here(broker, args.prefix, None, show)
        else:
            seconds = await run_here(broker, args.prefix, args.state_dir, show)
        out = [
            await read_topic(broker, names[t], args.partitions)
            for t in ("sessions", "recommendations", "trending")
        ]
        await broker.close()
        return seconds, *out  # type: ignore[return-value]

    seconds, sessions, recs, trending = asyncio.run(go())
    cutoff = cutoff_ms(cs)
    at_cutoff = recommendations_at(((k, v) for k, v, _ in recs), cutoff)
    print_summary(
        cs, seconds, sessions, recs, len(trending), quality(cs, at_cutoff, cutoff, TOP_N), cutoff
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
