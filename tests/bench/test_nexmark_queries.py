"""Our Nexmark queries equal the independent DuckDB computation of the Nexmark SQL.

Updating queries (``UPDATING``) are compared by their final value per key."""

import json

import pytest

import streams as st
from bench.nexmark import reference
from bench.nexmark.generator import write_jsonl
from bench.nexmark.queries import (
    INPUT,
    NONDETERMINISTIC,
    OUTPUT,
    QUERIES,
    UPDATING,
    final_rows,
    run_driver,
)
from bench.nexmark.reference import NexmarkReference
from bench.nexmark.runner import run_file

# (seed, events): 200 events/s of event time, so 4,000 events span 20 s and many windows
# open and close; the other seeds are smaller to keep the suite fast.
DATASETS = [(11, 4_000), (3, 2_500), (7, 2_500)]


def _dataset(tmp_path_factory, seed, n):
    path = tmp_path_factory.mktemp("nx") / "events.jsonl"
    write_jsonl(path, n, seed=seed, rate_per_s=200)
    events = [json.loads(line) for line in path.read_text().splitlines()]
    return path, events, NexmarkReference(str(path))


@pytest.fixture(scope="module", params=DATASETS, ids=[f"seed{s}" for s, _ in DATASETS])
def data(request, tmp_path_factory):
    path, events, ref = _dataset(tmp_path_factory, *request.param)
    yield path, events, ref
    ref.close()


def norm(rows):
    return sorted(
        json.dumps(
            {k: round(v, 6) if isinstance(v, float) else v for k, v in r.items()}, sort_keys=True
        )
        for r in rows
    )


# (a NONDETERMINISTIC query's rows depend on processing time: tests/bench/test_nexmark_time.py
# checks what of it is deterministic)
@pytest.mark.parametrize("query", [q for q in sorted(QUERIES) if q not in NONDETERMINISTIC])
@pytest.mark.parametrize("partitions", [1, 3])
def test_query_equals_reference(data, query, partitions):
    _, events, ref = data
    got = run_driver(query, events, partitions=partitions)
    want = reference.QUERIES[query](ref)
    assert norm(got) == norm(want)
    assert want  # the data exercises the query


def test_the_data_has_bids_before_their_auction(data):
    """The regular joins (q4, q9, q20) must hold such bids until the auction comes."""
    _, events, ref = data
    seen, early = set(), set()
    for e in events:
        if e["type"] == "auction":
            seen.add(e["id"])
        elif e["type"] == "bid" and e["auction"] not in seen:
            early.add(e["auction"])
    assert early & {r["auction"] for r in ref.q20()}
    assert early & {r["id"] for r in ref.q9()}


def test_updating_queries_update(data):
    """Over several micro-batches the upsert streams revise rows, so comparing the final
    value per key is what checks them."""
    _, events, _ = data
    for query in ("q4", "q9", "q19"):
        d = st.TopologyTestDriver(QUERIES[query]())
        for i in range(0, len(events), 500):
            d.pipe_many(INPUT, [(None, e, e["dateTime"]) for e in events[i : i + 500]])
        d.end_of_input()
        records = d.read_key_values(OUTPUT)
        assert query in UPDATING
        assert len(final_rows(records)) < len(records)


def test_final_rows_keeps_the_last_value_per_key_and_drops_deletions():
    records = [([1, 2], {"v": 1}), (3, {"v": 2}), ([1, 2], {"v": 3}), (3, None), (4, {"v": 4})]
    assert final_rows(records) == [{"v": 3}, {"v": 4}]


@pytest.mark.parametrize("query", ["q5", "q19", "q20"])
def test_runner_on_the_embedded_worker(tmp_path_factory, tmp_path, query):
    """The worker, with the input spread over two partitions (so arrival order changes); an
    updating query's output is its final value per key."""
    path, _, ref = _dataset(tmp_path_factory, *DATASETS[0])
    with ref:
        want = getattr(ref, query)()
    out = tmp_path / f"{query}.jsonl"
    stats = run_file(query, str(path), str(out), partitions=2)
    assert stats["events"] == DATASETS[0][1] and stats["rows"] == len(want)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert norm(rows) == norm(want)
