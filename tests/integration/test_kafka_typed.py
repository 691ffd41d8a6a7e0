"""Typed values on the real broker: a ``msgspec.Struct`` source filtered with ``st.col`` into
typed sinks (JSON and registry Avro), the same records as the test driver gives."""

from __future__ import annotations

import asyncio
import time
import uuid

import msgspec
import pytest

import streams as st
from streams.core.partitioner import partition_for
from streams.core.serdes import InMemoryRegistry, avro_of
from streams.core.typed_serde import json_of
from streams.runtime.broker import TopicPartition, TopicSpec
from streams.runtime.kafka import KafkaBroker

pytestmark = pytest.mark.kafka


class Payment(msgspec.Struct):
    card: str
    amount: int
    currency: str = "EUR"


class Alert(msgspec.Struct):
    card: str
    amount: int
    level: str


def level(p: Payment) -> Alert:
    return Alert(p.card, p.amount, "high" if p.amount >= 1_000 else "medium")


def topology(run: str, registry: InMemoryRegistry) -> st.Topology:
    t = st.Topology(f"typed-{run}")
    pays = t.source(f"payments-{run}", key=str, value=Payment)
    large = pays.filter((st.col("amount") >= 100) & (st.col("currency") == "EUR"))
    large.map_values(level).to(f"alerts-{run}", value=Alert)
    large.map_values(level).to(
        f"alerts-avro-{run}", value=avro_of(Alert, registry, topic=f"alerts-avro-{run}")
    )
    return t


def payments() -> list[Payment]:
    return [
        Payment(f"c{i % 3}", amount, "EUR" if i % 4 else "USD")
        for i, amount in enumerate([5, 150, 2_000, 99, 100, 700, 1_200, 42, 310, 5_000])
    ]


def test_typed_values_on_kafka_match_the_driver(kafka_bootstrap, tmp_path):
    run = uuid.uuid4().hex[:8]
    src, outs = f"payments-{run}", [f"alerts-{run}", f"alerts-avro-{run}"]

    reg = InMemoryRegistry()
    d = st.TopologyTestDriver(topology(run, reg), partitions=2)
    for p in payments():
        d.pipe(src, p, key=p.card)
    want = {o: sorted(repr((r.key, r.value)) for r in d.read(o)) for o in outs}
    assert want[outs[0]] == want[outs[1]] and len(want[outs[0]]) == 5
    assert all("Alert(" in r for r in want[outs[0]])

    reg = InMemoryRegistry()  # (the Kafka run registers its own schemas)
    alert_json, alert_avro = json_of(Alert), avro_of(Alert, reg, topic=outs[1])

    async def on_kafka() -> dict[str, list[str]]:
        b = KafkaBroker(kafka_bootstrap)
        await b.create_topics([TopicSpec(t, 2) for t in (src, *outs)])
        p = b.producer()
        now = int(time.time() * 1000)
        ser = json_of(Payment)
        for pay in payments():
            kb = pay.card.encode()
            p.send_batch(src, partition_for(kb, 2), [(kb, ser.serialize(pay), now, ())])
        await p.flush()
        w = st.Worker(topology(run, reg), b, st.Config(state_dir=str(tmp_path)))
        await w.run(until_idle=True, end_of_input=True)
        c = b.consumer(None)
        got: dict[str, list[str]] = {}
        for o, serde in zip(outs, (alert_json, alert_avro), strict=True):
            tps = [TopicPartition(o, q) for q in range(2)]
            c.assign(tps)
            for tp in tps:
                c.seek(tp, 0)
            ends = await c.end_offsets(tps)
            rows: list[str] = []
            while any(c.position(tp) < ends[tp] for tp in tps):
                for msgs in (await c.getmany(timeout_ms=500)).values():
                    rows += [repr((m.key.decode(), serde.deserialize(m.value))) for m in msgs]
            got[o] = sorted(rows)
        await c.close()
        await b.close()
        return got

    got = asyncio.run(on_kafka())
    assert got == want
    assert reg.subjects() == [f"alerts-avro-{run}-value"]
