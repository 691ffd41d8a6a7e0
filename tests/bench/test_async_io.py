"""The async I/O benchmark runs end to end against its aiohttp service (small and quick)."""

import asyncio

from bench.async_io import bench


def test_the_benchmark_runs_every_record_through_the_service_in_order():
    r = asyncio.run(bench(records=600, latency_ms=5, concurrency=20, batch=50, ordered=True))
    assert r["records"] == 600 and r["ideal_per_s"] == 4000  # (bench() checks order and count)
    assert r["ratio"] > 0 and r["records_per_s"] > 0
