"""The harness's Kafka side (project venv, aiokafka): topics, producing input, reading output.

Every run's topics and consumer groups carry a unique run id; :func:`cleanup` deletes every
topic whose name contains it (the peers' own internal topics included: quixstreams names its
repartition topics after the consumer group, faust its assignor topic after the app id) and the
peer's consumer group.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

_GROUP_ID_NOT_FOUND = 69


async def _admin(bootstrap: str) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    return admin


async def create_topics(bootstrap: str, names: list[str], partitions: int = 1) -> None:
    admin = await _admin(bootstrap)
    try:
        # retention.ms=-1: quixstreams writes event time (here: 2023) as the record timestamp,
        # and time-based retention would delete those records mid-run; its repartition topics
        # copy the setting from their source topic.
        cfg = {"retention.ms": "-1"}
        await admin.create_topics([NewTopic(n, partitions, 1, topic_configs=cfg) for n in names])
    finally:
        await admin.close()


async def produce(
    bootstrap: str, topic: str, values: list[bytes], keys: list[bytes] | None = None
) -> None:
    """Send ``values`` (with ``keys``, if given) to partition 0 of ``topic`` in order
    (timestamps: now, so retention leaves them alone; the peers take event time from
    ``dateTime``)."""
    p = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1 << 20, acks="all"
    )
    await p.start()
    try:
        pending: list[Any] = []
        for i, v in enumerate(values):
            key = None if keys is None else keys[i]
            pending.append(await p.send(topic, v, key=key, partition=0))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await p.stop()


async def read_all(bootstrap: str, topic: str) -> list[bytes]:
    """Every value in partition 0 of ``topic`` up to its current end."""
    c = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await c.start()
    try:
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        end = (await c.end_offsets([tp]))[tp]
        await c.seek_to_beginning(tp)
        out: list[bytes] = []
        while await c.position(tp) < end:
            for msgs in (await c.getmany(tp, timeout_ms=1000, max_records=50_000)).values():
                out.extend(m.value for m in msgs if m.value is not None)
        return out
    finally:
        await c.stop()


async def cleanup(bootstrap: str, run_id: str, groups: list[str]) -> list[str]:
    """Delete the run's topics and consumer groups; returns the deleted topic names."""
    from aiokafka.protocol.admin import DeleteGroupsRequest  # type: ignore[import-untyped]

    admin = await _admin(bootstrap)
    try:
        topics = [t for t in await admin.list_topics() if run_id in t]
        if topics:
            await admin.delete_topics(topics)
        for g in groups:
            coordinator = await admin.find_coordinator(g)
            resp = await admin._send_request(DeleteGroupsRequest([g]), coordinator)
            for gid, code in resp.results:
                if code not in (0, _GROUP_ID_NOT_FOUND):
                    raise RuntimeError(f"deleting consumer group {gid}: error code {code}")
        return topics
    finally:
        await admin.close()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


__all__ = ["cleanup", "create_topics", "produce", "read_all", "run"]
