"""A first topology on the embedded broker: route and enrich a stream of card payments.

    python -m apps.payments_demo [--payments 100000] [--partitions 4]

Generates synthetic payments into the in-process broker, runs the topology with a real
``Worker`` (fetch, fused chains, sinks, commits) until the input is consumed, and prints what
came out. No Kafka needed; ``--bootstrap`` is for the Kafka transport.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time

import streams as st
from streams.core.partitioner import partition_for
from streams.runtime.broker import TopicPartition
from streams.runtime.embedded import EmbeddedBroker

COUNTRIES = ["NL", "DE", "FR", "GB", "US", "BR"]


def build_topology() -> st.Topology:
    """Large payments by card, split into domestic and cross-border."""
    topo = st.Topology("payments-demo")
    payments = topo.source("payments", timestamp="ts")
    large = (
        payments.filter(st.col("amount") >= 500, name="large")
        .with_columns(
            cents=st.col("amount") * 100, cross_border=st.col("country") != st.col("home")
        )
        .key_by("card", name="by-card")
    )
    cross, domestic = large.branch(st.col("cross_border"), st.lit(True), name="route")
    cross.select("card", "cents", "country", "home").to("cross-border-large")
    domestic.select("card", "cents", "country").to("domestic-large")
    return topo


def generate(n: int, seed: int = 7) -> list[dict[str, object]]:
    rnd = random.Random(seed)
    cards = [(f"card-{i:05d}", rnd.choice(COUNTRIES)) for i in range(5_000)]
    out = []
    t = 1_700_000_000_000
    for _ in range(n):
        card, home = rnd.choice(cards)
        t += rnd.randint(0, 50)
        country = home if rnd.random() < 0.9 else rnd.choice(COUNTRIES)
        out.append(
            {
                "card": card,
                "home": home,
                "country": country,
                "ts": t,
                "amount": int(rnd.lognormvariate(4, 1.2)),
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--payments", type=int, default=100_000)
    ap.add_argument("--partitions", type=int, default=4)
    args = ap.parse_args()

    topo = build_topology()
    print(topo.describe(), "\n")
    broker = EmbeddedBroker(default_partitions=args.partitions)
    for t in ("payments", "cross-border-large", "domestic-large"):
        broker.create_topic(t, args.partitions)
    for p in generate(args.payments):
        kb = str(p["card"]).encode()
        broker.append(
            "payments",
            partition_for(kb, args.partitions),
            kb,
            st.serde.JSON.serialize(p),
            int(p["ts"]),
        )  # type: ignore[call-overload]

    worker = st.Worker(topo, broker)
    t0 = time.perf_counter()
    asyncio.run(worker.run(until_idle=True))
    dt = time.perf_counter() - t0

    print(
        f"processed {worker.processed:,} payments in {dt:.2f} s "
        f"({worker.processed / dt:,.0f} records/s, {args.partitions} partitions)\n"
    )
    for topic in ("cross-border-large", "domestic-large"):
        recs = [
            m for p in range(args.partitions) for m in broker.fetch(TopicPartition(topic, p), 0)
        ]
        print(f"{topic:20s} {len(recs):6,d} records")
        for m in recs[:3]:
            key = m.key.decode() if m.key else None
            value = m.value.decode() if m.value else None
            print(f"    key={key}  value={value}")


if __name__ == "__main__":
    main()
