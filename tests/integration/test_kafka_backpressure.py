"""Bounded memory: a throttled sink slows the worker down instead of growing its memory.

The broker throttles the worker's producer with a client quota (``producer_byte_rate``), so
output drains far slower than input is fetched and processed; commits are rare (10 min), so
nothing but backpressure (``Producer.wait_for_room``) keeps the unsent output bounded.
1M records flow through; the worker runs in its own process and reports its RSS before the run
and its peak.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import Array, Boolean, Float64, Int16, Int32, Schema, String

from streams.runtime.broker import TopicSpec
from streams.runtime.kafka import KafkaBroker

pytestmark = pytest.mark.kafka
REPO = Path(__file__).resolve().parents[2]
N = 1_000_000
PAD = b"x" * 91  # 100-byte values: 100 MB through a 5 MB/s quota


class _AlterClientQuotasResponse_v0(Response):
    API_KEY = 49
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "entries",
            Array(
                ("error_code", Int16),
                ("error_message", String("utf-8")),
                (
                    "entity",
                    Array(("entity_type", String("utf-8")), ("entity_name", String("utf-8"))),
                ),
            ),
        ),
    )


class _AlterClientQuotasRequest_v0(RequestStruct):
    API_KEY = 49
    API_VERSION = 0
    RESPONSE_TYPE = _AlterClientQuotasResponse_v0
    SCHEMA = Schema(
        (
            "entries",
            Array(
                (
                    "entity",
                    Array(("entity_type", String("utf-8")), ("entity_name", String("utf-8"))),
                ),
                ("ops", Array(("key", String("utf-8")), ("value", Float64), ("remove", Boolean))),
            ),
        ),
        ("validate_only", Boolean),
    )


class AlterClientQuotas(Request[_AlterClientQuotasRequest_v0]):
    """Kafka's AlterClientQuotas (aiokafka has no admin call for it)."""

    API_KEY = 49

    def __init__(self, client_id: str, byte_rate: float) -> None:
        self.entries = [([("client-id", client_id)], [("producer_byte_rate", byte_rate, False)])]

    def build(self, cls: type[_AlterClientQuotasRequest_v0]) -> _AlterClientQuotasRequest_v0:
        return cls(self.entries, False)


WORKER = textwrap.dedent(
    """
    import asyncio, json, sys
    import streams as st
    from streams.runtime.kafka import KafkaBroker
    from streams.runtime.kafka_producer import KafkaProducer

    bootstrap, client_id, src, out, app, state, limit = sys.argv[1:8]
    KafkaProducer.max_pending_records = int(limit)
    t = st.Topology(app)
    t.source(src, value=st.serde.BYTES).map_values(lambda v: v + b"-out", name="tag").to(
        out, value=st.serde.BYTES
    )
    broker = KafkaBroker(bootstrap, client_id=client_id)
    w = st.Worker(t, broker, st.Config(state_dir=state, commit_interval_ms=600_000))

    def mb(field):
        line = next(l for l in open("/proc/self/status") if l.startswith(field))
        return int(line.split()[1]) // 1024

    base = mb("VmRSS")  # the interpreter, the libraries and the worker, before any record
    asyncio.run(w.run(until_idle=True))
    print(json.dumps({"processed": w.processed, "base_rss_mb": base, "peak_rss_mb": mb("VmHWM")}))
    """
)


def _run_worker(bootstrap: str, src: str, out: str, tmp: Path, limit: int) -> dict[str, int]:
    client_id = f"bp-{uuid.uuid4().hex[:8]}"

    async def throttle() -> None:
        broker = KafkaBroker(bootstrap)
        admin = await broker._admin()
        resp = await admin._send_request(AlterClientQuotas(client_id, 5_000_000.0))
        assert all(code == 0 for code, _msg, _entity in resp.entries), resp
        await broker.close()

    asyncio.run(throttle())
    app = f"bp-app-{uuid.uuid4().hex[:8]}"
    proc = subprocess.run(
        [sys.executable, "-c", WORKER, bootstrap, client_id, src, out, app, str(tmp), str(limit)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_throttled_sink_keeps_memory_bounded(kafka_bootstrap: str, tmp_path: Path) -> None:
    uid = uuid.uuid4().hex[:8]
    src, out = f"bp-in-{uid}", f"bp-out-{uid}"

    async def produce() -> None:
        broker = KafkaBroker(kafka_bootstrap)
        await broker.create_topics([TopicSpec(src, 1), TopicSpec(out, 1)])
        p = broker.producer()
        for start in range(0, N, 50_000):
            now = int(time.time() * 1000)  # (timestamp 0 would be deleted by time retention)
            batch = [(None, b"%09d" % i + PAD, now, ()) for i in range(start, start + 50_000)]
            p.send_batch(src, 0, batch)
            await p.flush()
        await p.close()
        await broker.close()

    asyncio.run(produce())
    stats = _run_worker(kafka_bootstrap, src, out, tmp_path / "state", limit=50_000)
    assert stats["processed"] == N

    async def count_out() -> int:
        broker = KafkaBroker(kafka_bootstrap)
        from streams.runtime.broker import TopicPartition

        c = broker.consumer(None, read_committed=False)
        (end,) = (await c.end_offsets([TopicPartition(out, 0)])).values()
        await c.close()
        await broker.close()
        return end

    assert asyncio.run(count_out()) == N  # every record made it through the throttle
    # What the run adds to the process: bounded, 50K pending records of 100 bytes; without
    # backpressure the 1M unsent records alone add ~150 MB.
    assert stats["peak_rss_mb"] - stats["base_rss_mb"] < 100, stats
