"""Smoke tests of the real Kafka broker started by scripts/kafka/kafka, driven with aiokafka."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import pytest

pytestmark = pytest.mark.kafka

N_RECORDS = 1000


async def _consume(
    bootstrap: str,
    topic: str,
    want: int,
    *,
    isolation_level: str = "read_uncommitted",
    settle_ms: int = 1000,
) -> list[tuple[bytes, bytes]]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level=isolation_level,
    )
    await consumer.start()
    out: list[tuple[bytes, bytes]] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while len(out) < want and loop.time() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=500)
            for records in batches.values():
                out.extend((r.key, r.value) for r in records)
        # one more poll so records that should NOT be there (extra/aborted) get a chance to show
        for records in (await consumer.getmany(timeout_ms=settle_ms)).values():
            out.extend((r.key, r.value) for r in records)
    finally:
        await consumer.stop()
    return out


def test_batch_produce_and_getmany(
    kafka_bootstrap: str, kafka_topic_factory: Callable[..., str]
) -> None:
    from aiokafka import AIOKafkaProducer

    topic = kafka_topic_factory(partitions=3, configs={"cleanup.policy": "compact"})
    expected = {f"key-{i:04d}".encode(): f"value-{i}".encode() for i in range(N_RECORDS)}

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=5)
        await producer.start()
        try:
            partitions = sorted(await producer.partitions_for(topic))
            assert partitions == [0, 1, 2]
            futures = []
            items = list(expected.items())
            i = 0
            while i < len(items):
                batch = producer.create_batch()
                while i < len(items):
                    key, value = items[i]
                    if batch.append(key=key, value=value, timestamp=None) is None:
                        break  # batch full
                    i += 1
                part = partitions[len(futures) % len(partitions)]
                futures.append(await producer.send_batch(batch, topic, partition=part))
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    async def scenario() -> list[tuple[bytes, bytes]]:
        await produce()
        return await _consume(kafka_bootstrap, topic, N_RECORDS)

    got = asyncio.run(scenario())
    assert len(got) == N_RECORDS
    assert dict(got) == expected


def test_transactions_read_committed(
    kafka_bootstrap: str, kafka_topic_factory: Callable[..., str]
) -> None:
    from aiokafka import AIOKafkaProducer, TopicPartition

    topic = kafka_topic_factory(partitions=1)
    source = kafka_topic_factory(partitions=1)
    group = f"txn-group-{uuid.uuid4().hex[:8]}"

    async def scenario() -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]], int | None]:
        from aiokafka import AIOKafkaConsumer

        producer = AIOKafkaProducer(
            bootstrap_servers=kafka_bootstrap, transactional_id=f"txn-{uuid.uuid4().hex[:8]}"
        )
        await producer.start()
        try:
            await producer.begin_transaction()
            for i in range(10):
                await producer.send(topic, f"c{i}".encode(), key=b"committed")
            await producer.send_offsets_to_transaction({TopicPartition(source, 0): 42}, group)
            await producer.commit_transaction()

            await producer.begin_transaction()
            for i in range(5):
                await producer.send(topic, f"a{i}".encode(), key=b"aborted")
            await producer.abort_transaction()

            async with producer.transaction():
                await producer.send(topic, b"last", key=b"committed")
        finally:
            await producer.stop()

        committed = await _consume(kafka_bootstrap, topic, 11, isolation_level="read_committed")
        uncommitted = await _consume(kafka_bootstrap, topic, 16)
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group)
        await consumer.start()
        try:
            offset = await consumer.committed(TopicPartition(source, 0))
        finally:
            await consumer.stop()
        return committed, uncommitted, offset

    committed, uncommitted, offset = asyncio.run(scenario())
    assert [v for _, v in committed] == [f"c{i}".encode() for i in range(10)] + [b"last"]
    assert all(k == b"committed" for k, _ in committed)
    # read_uncommitted does see the aborted records, so the check above is meaningful
    assert sorted(v for k, v in uncommitted if k == b"aborted") == [
        f"a{i}".encode() for i in range(5)
    ]
    assert offset == 42
