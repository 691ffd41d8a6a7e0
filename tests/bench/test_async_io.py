"""The async I/O benchmark runs end to end against both its services (small and quick)."""

import asyncio

import pytest

from bench.async_io import bench


@pytest.mark.parametrize("service", ["http", "http-aiohttp"])
def test_the_benchmark_runs_every_record_through_the_service_in_order(service):
    r = asyncio.run(
        bench(records=600, latency_ms=5, concurrency=20, batch=50, ordered=True, service=service)
    )
    assert r["records"] == 600 and r["ideal_per_s"] == 4000  # (bench() checks order and count)
    assert r["ratio"] > 0 and r["records_per_s"] > 0 and r["service_cpu_s"] > 0
