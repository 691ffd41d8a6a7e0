"""Check that aiokafka works against a broker: admin (compacted topic), plain produce/consume,
consumer-group commit, transactions (commit + abort, send_offsets_to_transaction, read_committed),
and optionally SASL/PLAIN.

  python scripts/kafka/verify_aiokafka.py 127.0.0.1:PORT [--sasl 127.0.0.1:SASLPORT]
"""

import argparse
import asyncio
import sys
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType


async def drain(bootstrap, topic, want, **kw):
    c = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", **kw)
    await c.start()
    out = []
    try:
        loop = asyncio.get_running_loop()
        end = loop.time() + 20
        while len(out) < want and loop.time() < end:
            for recs in (await c.getmany(timeout_ms=500)).values():
                out.extend(recs)
        # give stragglers (e.g. aborted records wrongly visible) a chance to show up
        for recs in (await c.getmany(timeout_ms=1000)).values():
            out.extend(recs)
    finally:
        await c.stop()
    return out


async def main(bootstrap, sasl):
    run = uuid.uuid4().hex[:8]
    src, dst, compacted = f"src-{run}", f"dst-{run}", f"compacted-{run}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(src, 3, 1),
                NewTopic(dst, 1, 1),
                NewTopic(compacted, 1, 1, topic_configs={"cleanup.policy": "compact"}),
            ]
        )
        desc = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, compacted)])
        policy = [
            e[1] for r in desc for res in r.resources for e in res[4] if e[0] == "cleanup.policy"
        ]
        assert policy == ["compact"], policy
        print("admin create_topics ok; cleanup.policy =", policy)
    finally:
        await admin.close()

    p = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await p.start()
    try:
        for i in range(30):
            await p.send(src, f"v{i}".encode(), key=f"k{i}".encode())
        await p.send_and_wait(compacted, b"x", key=b"k")
    finally:
        await p.stop()

    # consumer group commit
    group = f"g-{run}"
    recs = await drain(bootstrap, src, 30, group_id=group, enable_auto_commit=False)
    assert len(recs) == 30, len(recs)
    c = AIOKafkaConsumer(
        src,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await c.start()
    try:
        await c.getmany(timeout_ms=3000)
        await c.commit()
        committed = {tp.partition: await c.committed(tp) for tp in c.assignment()}
        print("group commit ok:", committed)
    finally:
        await c.stop()

    # transactions: consume-transform-produce with offsets in the txn, then an aborted txn
    tp = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"tx-{run}")
    await tp.start()
    try:
        async with tp.transaction():
            for r in recs:
                await tp.send(dst, r.value.upper(), key=r.key)
            offsets = {}
            for r in recs:
                t = TopicPartition(r.topic, r.partition)
                offsets[t] = max(offsets.get(t, 0), r.offset + 1)
            await tp.send_offsets_to_transaction(offsets, f"txg-{run}")
        await tp.begin_transaction()
        await tp.send(dst, b"ABORTED", key=b"a")
        await tp.abort_transaction()
        # low-level API, as the brief names it
        await tp.begin_transaction()
        await tp.send(dst, b"LAST", key=b"z")
        await tp.commit_transaction()
    finally:
        await tp.stop()
    got = await drain(bootstrap, dst, 31, isolation_level="read_committed")
    vals = [r.value for r in got]
    assert len(vals) == 31 and b"ABORTED" not in vals and vals[-1] == b"LAST", vals
    unc = await drain(bootstrap, dst, 32, isolation_level="read_uncommitted")
    assert b"ABORTED" in [r.value for r in unc]
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=f"txg-{run}")
    await c.start()
    try:
        txo = {t.partition: await c.committed(t) for t in offsets}
    finally:
        await c.stop()
    assert txo == {t.partition: o for t, o in offsets.items()}, txo
    print(
        "transactions ok: read_committed saw", len(vals), "records, abort hidden; txn offsets", txo
    )

    if sasl:
        kw = dict(
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="PLAIN",
            sasl_plain_username="streams",
            sasl_plain_password="streams-secret",
        )
        p = AIOKafkaProducer(bootstrap_servers=sasl, **kw)
        await p.start()
        try:
            await p.send_and_wait(compacted, b"sasl", key=b"s")
        finally:
            await p.stop()
        assert [r.value for r in await drain(sasl, compacted, 2, **kw)][-1] == b"sasl"
        print("sasl PLAIN ok")
    print("ALL OK")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("bootstrap")
    ap.add_argument("--sasl")
    a = ap.parse_args()
    asyncio.run(main(a.bootstrap, a.sasl))
    sys.exit(0)
