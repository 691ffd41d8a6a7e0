"""Our Nexmark queries equal the independent DuckDB computation of the Nexmark SQL."""

import json

import pytest

from bench.nexmark.generator import write_jsonl
from bench.nexmark.queries import QUERIES, run_driver
from bench.nexmark.reference import NexmarkReference
from bench.nexmark.runner import run_file


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("nx") / "events.jsonl"
    # 200 events/s of event time: 4,000 events span 20 s, so many windows open and close
    write_jsonl(path, 4_000, seed=11, rate_per_s=200)
    events = [json.loads(line) for line in path.read_text().splitlines()]
    return path, events, NexmarkReference(str(path))


def norm(rows):
    return sorted(
        json.dumps(
            {k: round(v, 6) if isinstance(v, float) else v for k, v in r.items()}, sort_keys=True
        )
        for r in rows
    )


@pytest.mark.parametrize("query", sorted(QUERIES))
@pytest.mark.parametrize("partitions", [1, 3])
def test_query_equals_reference(data, query, partitions):
    _, events, ref = data
    got = run_driver(query, events, partitions=partitions)
    want = getattr(ref, query)()
    assert norm(got) == norm(want)
    assert want  # the data exercises the query


def test_runner_on_the_embedded_worker(data, tmp_path):
    path, _, ref = data
    out = tmp_path / "q5.jsonl"
    stats = run_file("q5", str(path), str(out), partitions=2)
    assert stats["events"] == 4_000 and stats["rows"] == len(ref.q5())
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert norm(rows) == norm(ref.q5())
