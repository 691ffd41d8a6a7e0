"""PostgresSink and IcebergSink on a real broker, killed with SIGKILL at random points: under
both guarantees the table holds every input record exactly once (PostgreSQL on a real server
started by scripts/postgres/postgres)."""

from __future__ import annotations

import os
import random
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from streams.runtime.broker import TopicSpec
from tests.integration.test_kafka_workers import WorkerProc, create_topics, produce, wait_for

pytestmark = pytest.mark.kafka
psycopg = pytest.importorskip("psycopg")
pytest.importorskip("pyiceberg")

KINDS = [pytest.param("postgres", marks=pytest.mark.postgres), "iceberg"]


def table_ids(env: dict[str, str]) -> list[int]:
    if env["STREAMS_TEST_SINK"] == "postgres":
        with psycopg.connect(env["STREAMS_TEST_DSN"]) as conn:
            if not conn.execute("SELECT to_regclass(%s)", (env["STREAMS_TEST_TABLE"],)).fetchone()[
                0
            ]:
                return []
            return [r[0] for r in conn.execute(f"SELECT id FROM {env['STREAMS_TEST_TABLE']}")]
    from pyiceberg.exceptions import NoSuchTableError

    from tests.integration.sink_apps import sink_from_env

    old = dict(os.environ)
    os.environ.update(env)
    try:
        sink: Any = sink_from_env()
    finally:
        os.environ.clear()
        os.environ.update(old)
    try:
        table = sink.load_catalog().load_table(env["STREAMS_TEST_TABLE"])
    except NoSuchTableError:
        return []
    return list(table.scan(selected_fields=("id",)).to_arrow().column("id").to_pylist())


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
@pytest.mark.parametrize("kind", KINDS)
def test_sigkill_at_random_points_leaves_every_record_once(
    kafka_bootstrap: str, tmp_path: Path, request: pytest.FixtureRequest, kind: str, guarantee: str
) -> None:
    run = uuid.uuid4().hex[:8]
    src = f"in-{run}"
    create_topics(kafka_bootstrap, [TopicSpec(src, 2)])
    env = {
        "STREAMS_TEST_APP": f"sink-{run}",
        "STREAMS_TEST_IN": src,
        "STREAMS_TEST_SINK": kind,
        "STREAMS_TEST_SLOW_S": "0.0005",  # ~1 s per 2000 records: kills land mid-stream
    }
    if kind == "postgres":
        schema = request.getfixturevalue("pg_schema")
        env |= {
            "STREAMS_TEST_DSN": request.getfixturevalue("postgres_dsn"),
            "STREAMS_TEST_TABLE": f"{schema}.crash",
        }
    else:
        env |= {
            "STREAMS_TEST_WAREHOUSE": str(tmp_path / "lake"),
            "STREAMS_TEST_TABLE": "lake.crash",
        }
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    ref = "tests.integration.sink_apps:to_sink"
    args = ("--guarantee", guarantee)
    total, seen = 0, 0
    for round_ in range(3):  # produce, let it write, kill -9 at a random moment, restart
        produce(kafka_bootstrap, src, 2, total, 3000)
        total += 3000
        w = WorkerProc(
            ref, kafka_bootstrap, env, tmp_path / "w", tmp_path / f"w{round_}.log", *args
        )
        wait_for(lambda n=seen: len(table_ids(env)) > n, 90, f"progress (seed {seed})")
        time.sleep(rng.uniform(0.0, 1.5))
        w.kill()
        seen = len(table_ids(env))
    produce(kafka_bootstrap, src, 2, total, 1000)
    total += 1000
    w = WorkerProc(ref, kafka_bootstrap, env, tmp_path / "w", tmp_path / "w-last.log", *args)
    try:
        wait_for(lambda: len(table_ids(env)) >= total, 120, f"every record (seed {seed})")
        time.sleep(1.5)  # a duplicate committed late would show now
    finally:
        w.stop()
    ids = table_ids(env)
    dupes = sorted(i for i, n in Counter(ids).items() if n > 1)
    assert not dupes, f"seed {seed}: {len(dupes)} ids twice, e.g. {dupes[:5]}"
    assert sorted(ids) == list(range(total)), f"seed {seed}"
