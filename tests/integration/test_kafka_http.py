"""The HTTP endpoints on the real broker, two workers in one consumer group: /health becomes
ready once the stores are restored, /metrics moves with traffic, and a key held by either
worker is answered through both workers' endpoints (forwarded via the group's endpoint map)."""

from __future__ import annotations

import asyncio
import time
import uuid

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

import streams as st
from streams.core.partitioner import partition_for
from streams.runtime.broker import TopicPartition, TopicSpec
from streams.runtime.kafka import KafkaBroker

pytestmark = pytest.mark.kafka
KEYS = [f"k{i}" for i in range(40)]


async def produce(b: KafkaBroker, topic: str, start: int, n: int) -> None:
    p = b.producer()
    now = int(time.time() * 1000)
    for i in range(start, start + n):
        key = KEYS[i % len(KEYS)].encode()
        p.send_batch(topic, partition_for(key, 4), [(key, b"{}", now, ())])
    await p.flush()
    await p.close()


async def metric(http: aiohttp.ClientSession, endpoint: str, name: str) -> float:
    """Sum of a metric's samples as ``/metrics`` shows them."""
    async with http.get(f"http://{endpoint}/metrics") as r:
        assert r.status == 200
        text = await r.text()
    return sum(
        s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if s.name == name
    )


async def health(http: aiohttp.ClientSession, endpoint: str) -> tuple[int, dict]:
    async with http.get(f"http://{endpoint}/health") as r:
        return r.status, await r.json()


async def wait_for(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await cond():
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


async def scenario(bootstrap: str, tmp) -> None:
    run = uuid.uuid4().hex[:8]
    app, src, out = f"http-{run}", f"in-{run}", f"out-{run}"
    b = KafkaBroker(bootstrap)
    await b.create_topics([TopicSpec(src, 4), TopicSpec(out, 4)])
    await produce(b, src, 0, 400)  # 10 per key

    def topo() -> st.Topology:
        t = st.Topology(app)
        t.source(src).count("counts").to(out, value=st.serde.INT)
        return t

    def cfg(name: str, http: bool = True) -> st.Config:
        return st.Config(
            state_dir=str(tmp / name),
            commit_interval_ms=100,
            http_address="127.0.0.1:0" if http else None,
        )

    # a first worker builds the state: the two below start empty and restore it
    await st.Worker(topo(), b, cfg("first", http=False)).run(until_idle=True)
    changelog = f"{app}-counts-changelog"
    reader = b.consumer(None)
    ends = await reader.end_offsets([TopicPartition(changelog, p) for p in range(4)])
    await reader.close()
    assert sum(ends.values()) >= 40

    a, c = st.Worker(topo(), b, cfg("a")), st.Worker(topo(), b, cfg("c"))
    runs = [asyncio.create_task(a.run()), asyncio.create_task(c.run())]
    try:
        async with aiohttp.ClientSession() as http:
            seen: list[tuple[int, str]] = []

            async def both_ready() -> bool:
                if a.endpoint is None or c.endpoint is None:
                    return False
                if not (len(a.slots) == 2 and len(c.slots) == 2):
                    return False
                results = [await health(http, w.endpoint) for w in (a, c)]
                seen.extend((s, body["status"]) for s, body in results)
                return all(s == 200 for s, _ in results)

            await wait_for(both_ready, 120, "both workers ready with two tasks each")
            assert all(st_ == 503 for st_, status in seen if status != "ready")
            # ready means restored: each worker replayed its tasks' changelogs, nothing left
            for w in (a, c):
                assert await metric(http, w.endpoint, "streams_restored_records_total") > 0
                assert await metric(http, w.endpoint, "streams_restore_remaining_records") == 0
                status, body = await health(http, w.endpoint)
                assert status == 200 and body["ready"] and body["healthy"] and not body["stalled"]
                assert sorted(body["tasks"]) == sorted(str(t) for t in w.slots)
            assert a.restored_records + c.restored_records >= sum(ends.values())

            # /metrics moves with traffic
            before = sum(
                [await metric(http, w.endpoint, "streams_records_in_total") for w in (a, c)]
            )
            out_before = sum(
                [await metric(http, w.endpoint, "streams_records_out_total") for w in (a, c)]
            )
            await produce(b, src, 400, 200)  # 15 per key now

            async def moved() -> bool:
                now = [await metric(http, w.endpoint, "streams_records_in_total") for w in (a, c)]
                return sum(now) >= before + 200

            await wait_for(moved, 60, "records_in to count the new records")
            out_after = sum(
                [await metric(http, w.endpoint, "streams_records_out_total") for w in (a, c)]
            )
            assert out_after > out_before
            assert await metric(http, a.endpoint, "streams_commit_seconds_count") > 0
            assert await metric(http, a.endpoint, "streams_rebalances_total") >= 1
            assert await metric(http, a.endpoint, "streams_store_entries") > 0

            async def lag_zero() -> bool:
                return all(
                    [await metric(http, w.endpoint, "streams_consumer_lag") == 0 for w in (a, c)]
                )

            await wait_for(lag_zero, 60, "consumer lag back to 0")

            # a key held by the other worker is answered through either endpoint
            local_to_a = [k for k in KEYS if a.store("counts").is_local(k)]
            local_to_c = [k for k in KEYS if not a.store("counts").is_local(k)]
            assert local_to_a and local_to_c
            assert all(c.store("counts").is_local(k) for k in local_to_c)

            async def answered(key: str, owner: st.Worker) -> bool:
                for via in (a, c):
                    async with http.get(f"http://{via.endpoint}/stores/counts/{key}") as r:
                        body = await r.json()
                    if r.status != 200 or body["value"] != 15:
                        return False  # the last commit may still be on its way
                    assert body["served_by"] == owner.endpoint, body
                return True

            for key, owner in ((local_to_c[0], c), (local_to_a[0], a)):
                await wait_for(lambda k=key, o=owner: answered(k, o), 30, f"{key} answered")
            # and every key is right, whichever worker is asked
            for key in KEYS:
                owner = a if key in local_to_a else c
                async with http.get(f"http://{a.endpoint}/stores/counts/{key}") as r:
                    body = await r.json()
                assert (r.status, body["value"], body["served_by"]) == (200, 15, owner.endpoint)
            async with http.get(f"http://{c.endpoint}/stores/nope/k1") as r:
                assert r.status == 404 and (await r.json())["error"] == "unknown store 'nope'"
    finally:
        for w in (a, c):
            w.stop()
        await asyncio.gather(*runs)
        await b.close()


def test_http_health_metrics_and_forwarded_queries(kafka_bootstrap, tmp_path):
    asyncio.run(scenario(kafka_bootstrap, tmp_path))
