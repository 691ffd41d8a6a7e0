"""``python -m bench connectors`` on a small input: both paths fill their tables with every
record once (each run checks it) and the rates are positive."""

from __future__ import annotations

import argparse
import asyncio

import pytest

from bench.connectors import run_all

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
pytest.importorskip("psycopg")
pytest.importorskip("pyiceberg")


def test_the_benchmark_runs_both_sinks(kafka_bootstrap: str, postgres_dsn: str) -> None:
    args = argparse.Namespace(
        records=2000,
        partitions=2,
        commit_ms=200,
        guarantee="exactly_once",
        sinks="postgres,iceberg",
    )
    res = asyncio.run(run_all(args, kafka_bootstrap, postgres_dsn))
    assert set(res) == {
        "postgres_direct_rows_per_s",
        "postgres_sink_rows_per_s",
        "iceberg_direct_rows_per_s",
        "iceberg_sink_rows_per_s",
    }
    assert all(v > 0 for v in res.values())
