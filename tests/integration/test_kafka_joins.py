"""One join of each family on the real broker, compared with the test driver."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

import streams as st
from streams import windows
from streams.core.partitioner import partition_for
from streams.runtime.broker import TopicPartition, TopicSpec
from streams.runtime.kafka import KafkaBroker

pytestmark = pytest.mark.kafka


def topology(run: str) -> st.Topology:
    t = st.Topology(f"joins-{run}")
    cards = t.table(f"cards-{run}")
    merchants = t.global_table(f"merchants-{run}")
    tx = t.source(f"tx-{run}", timestamp="ts")
    clicks = t.source(f"clicks-{run}", timestamp="ts")
    (
        tx.join(cards, lambda v, c: {**v, "limit": c["limit"]})
        .join(merchants, lambda v, m: {**v, "risk": m and m["risk"]}, key="merchant", how="left")
        .to(f"enriched-{run}")
    )
    (
        tx.join(
            clicks,
            lambda v, c: {"tx": v["id"], "click": c and c["id"]},
            how="left",
            window=windows.join_window(1_000),
            name="tx-clicks",
        ).to(f"tx-clicks-{run}")
    )
    limits = t.table(f"limits-{run}")
    cards.join(
        limits, lambda c, lim: {"limit": c["limit"], "cap": lim and lim["cap"]}, how="left"
    ).changes().to(f"card-limits-{run}")
    products = t.table(f"products-{run}")
    (
        t.table(f"orders-{run}")
        .join_on(
            products,
            "product",
            lambda o, pr: {"qty": o["qty"], "name": pr["name"]},
            name="order-products",
        )
        .changes()
        .to(f"order-products-{run}")
    )
    return t


def inputs(run: str) -> list[tuple[str, str, dict]]:
    base = 1_000_000
    recs: list[tuple[str, str, dict]] = []
    recs += [(f"merchants-{run}", f"m{i}", {"risk": i}) for i in range(3)]
    recs += [(f"cards-{run}", f"c{i}", {"limit": 100 * i}) for i in range(4)]
    recs += [(f"limits-{run}", f"c{i}", {"cap": 7 * i}) for i in range(0, 4, 2)]
    recs += [(f"products-{run}", f"p{i}", {"name": f"product {i}"}) for i in range(3)]
    recs += [(f"orders-{run}", f"o{i}", {"product": f"p{i % 4}", "qty": i}) for i in range(6)]
    recs += [
        (f"clicks-{run}", f"c{i % 4}", {"id": f"k{i}", "ts": base + 500 * i}) for i in range(12)
    ]
    recs += [
        (f"tx-{run}", f"c{i % 4}", {"id": f"t{i}", "merchant": f"m{i % 5}", "ts": base + 700 * i})
        for i in range(12)
    ]
    return recs


def test_joins_on_kafka_match_the_driver(kafka_bootstrap, tmp_path):
    run = uuid.uuid4().hex[:8]
    topo = topology(run)
    outs = [f"enriched-{run}", f"tx-clicks-{run}", f"card-limits-{run}", f"order-products-{run}"]
    ins = sorted({topic for topic, _, _ in inputs(run)})

    # the driver, fed table/global data first (as the worker loads global tables first)
    d = st.TopologyTestDriver(topo, partitions=2)
    for topic, key, value in inputs(run):
        d.pipe(topic, value, key=key, timestamp=value.get("ts", 0))
    d.end_of_input()
    in_order = {o: [(r.key, r.value) for r in d.read(o)] for o in outs}  # per partition, by offset
    want = {o: sorted(repr(kv) for kv in rows) for o, rows in in_order.items()}

    async def on_kafka() -> dict[str, list[str]]:
        b = KafkaBroker(kafka_bootstrap)
        await b.create_topics([TopicSpec(t, 2) for t in (*ins, *outs)])
        p = b.producer()
        now = int(time.time() * 1000)

        async def produce(recs: list[tuple[str, str, dict]]) -> None:
            for topic, key, value in recs:
                kb = key.encode()
                p.send_batch(
                    topic,
                    partition_for(kb, 2),
                    [(kb, st.serde.JSON.serialize(value), value.get("ts", now), ())],
                )
            await p.flush()

        # tables first, processed to the end, then the streams (a table join reads the table
        # as of processing; across topics the order of processing is not defined otherwise)
        tables = [r for r in inputs(run) if "ts" not in r[2]]
        await produce(tables)
        await st.Worker(topology(run), b, st.Config(state_dir=str(tmp_path))).run(until_idle=True)
        await produce([r for r in inputs(run) if "ts" in r[2]])
        w = st.Worker(topology(run), b, st.Config(state_dir=str(tmp_path)))
        await w.run(until_idle=True, end_of_input=True)
        c = b.consumer(None)
        got: dict[str, list[str]] = {}
        for o in outs:
            tps = [TopicPartition(o, q) for q in range(2)]
            c.assign(tps)
            for tp in tps:
                c.seek(tp, 0)
            ends = await c.end_offsets(tps)
            rows: list[str] = []
            while any(c.position(tp) < ends[tp] for tp in tps):
                for msgs in (await c.getmany(timeout_ms=500)).values():
                    rows += [
                        repr(
                            (
                                m.key.decode(),
                                None if m.value is None else st.serde.JSON.deserialize(m.value),
                            )
                        )
                        for m in msgs
                    ]
            got[o] = rows  # per partition, in offset order
        await c.close()
        await b.close()
        return got

    got = asyncio.run(on_kafka())
    for o in outs[:2]:
        assert sorted(got[o]) == want[o], o
    # a table-table join's intermediate updates depend on how the two tables' updates
    # interleave; its final value per key does not
    final_got = dict(eval(r) for r in got[outs[2]])
    assert final_got == dict(in_order[outs[2]])
    assert len(want[f"enriched-{run}"]) == 12 and len(want[f"tx-clicks-{run}"]) >= 12
