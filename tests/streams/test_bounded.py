"""A bounded run (Parquet, Arrow table, JSON lines, values) gives the streaming run's result."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

import streams as st
from streams import agg, windows
from streams.runtime.bounded import BOUNDED_CACHE_ENTRIES
from streams.testing import TopologyTestDriver


def _topology(execution="auto", schema=None):
    t = st.Topology("backfill", execution=execution)
    src = t.source("events", timestamp="ts", schema=schema)
    big = src.filter(st.col("amount") > 10).with_columns(cents=st.col("amount") * 100)
    big.to("big")
    (
        big.key_by("user")
        .window("per-10s", windows.tumbling(ms=10_000), emit="final")
        .aggregate(n=agg.count(), total=agg.sum("amount"), top=agg.max("amount"))
        .to("totals")
    )
    return t


records = hs.lists(
    hs.fixed_dictionaries(
        {
            "user": hs.sampled_from(["a", "b", "c"]),
            "amount": hs.integers(0, 100),
            "ts": hs.integers(0, 60_000),
        }
    ),
    max_size=60,
)


def _streaming(topo, recs, batch=10_000):
    """The streaming run, fetching ``batch`` records at a time (the watermark advances between
    batches, so batch boundaries decide which records are late: keep them equal)."""
    d = TopologyTestDriver(topo)
    items = [(None, r, i) for i, r in enumerate(recs)]
    for i in range(0, len(items), batch):
        d.pipe_many("events", items[i : i + batch])
    d.end_of_input()
    return {t: d.read(t) for t in ("big", "totals")}


def _values(out):
    return {t: [(r.key, r.value, r.timestamp) for r in rs] for t, rs in out.items()}


@settings(max_examples=40, deadline=None)
@given(records, hs.integers(1, 7))
def test_bounded_run_equals_streaming_run(recs, batch):
    want = _values(_streaming(_topology(), recs, batch))
    schema = pa.schema([("user", pa.string()), ("amount", pa.int64()), ("ts", pa.int64())])
    table = pa.Table.from_pylist(recs, schema=schema)
    for execution in ("row", "columnar", "auto"):
        got = st.run_bounded(_topology(execution), {"events": table}, batch_size=batch)
        assert _values(got) == want, execution
        got = st.run_bounded(_topology(execution), {"events": recs}, batch_size=batch)
        assert _values(got) == want, execution


def test_bounded_run_from_files(tmp_path):
    recs = [{"user": "abc"[i % 3], "amount": i * 7 % 50, "ts": i * 900} for i in range(200)]
    want = _values(_streaming(_topology(), recs, 64))
    pq.write_table(pa.Table.from_pylist(recs), tmp_path / "in.parquet", row_group_size=64)
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    for name in ("in.parquet", "in.jsonl"):
        got = st.run_bounded(_topology(), {"events": str(tmp_path / name)}, batch_size=64)
        assert _values(got) == want, name
    assert want["totals"], "windows close at the end of the input"


def test_every_window_closes_at_the_end():
    recs = [{"user": "a", "amount": 20, "ts": 5}]
    out = st.run_bounded(_topology(), {"events": recs})
    assert [r.value["n"] for r in out["totals"]] == [1]


def test_unknown_topic_is_an_error():
    with pytest.raises(st.StreamsError, match="not a source topic"):
        st.run_bounded(_topology(), {"nope": []})


@pytest.fixture
def commits(monkeypatch):
    """Every TopologyTestDriver.commit call (one entry each)."""
    calls = []
    real = TopologyTestDriver.commit
    monkeypatch.setattr(TopologyTestDriver, "commit", lambda d: calls.append(1) or real(d))
    return calls


def test_bounded_run_commits_when_a_store_is_full_not_per_batch(commits):
    recs = [{"user": f"u{i % 50}", "amount": 20, "ts": i * 10} for i in range(2_000)]
    table = pa.Table.from_pylist(recs)
    out = st.run_bounded(_topology(), {"events": table}, batch_size=10)
    assert len(out["big"]) == 2_000
    assert 0 < len(commits) < 200 // 2  # 200 batches; the end of input commits per sub-topology


def test_a_smaller_cache_commits_more_often_with_the_same_result(commits):
    # 200 tumbling windows of 10 s, each with the 50 users: 50 windows open at a time
    recs = [{"user": f"u{i % 50}", "amount": 20, "ts": i * 100} for i in range(20_000)]
    table = pa.Table.from_pylist(recs)
    results = {}
    for entries in (BOUNDED_CACHE_ENTRIES, 20):
        commits.clear()
        out = st.run_bounded(
            _topology(), {"events": table}, batch_size=100, cache_max_entries=entries
        )
        results[entries] = (len(commits), _values(out))
    (big, want), (small, got) = results[BOUNDED_CACHE_ENTRIES], results[20]
    assert got == want and len(want["totals"]) == 200 * 50
    assert big <= 2 and small > 50  # (the default: only the end-of-input commit)


@pytest.fixture
def peak_held(monkeypatch):
    """The most records any topic of a bounded run's broker held at once, by topic."""
    from streams.runtime import driver as driver_module

    peak: dict[str, int] = {}

    class PeakBroker(driver_module.EmbeddedBroker):
        def append(self, topic, *a, **kw):
            off = super().append(topic, *a, **kw)
            peak[topic] = max(peak.get(topic, 0), self.held(topic))
            return off

        def append_batch(self, topic, partition, records):
            super().append_batch(topic, partition, records)
            peak[topic] = max(peak.get(topic, 0), self.held(topic))

    monkeypatch.setattr(driver_module, "EmbeddedBroker", PeakBroker)
    return peak


@pytest.mark.parametrize("form", ["values", "jsonl"])
def test_a_bounded_run_holds_a_batch_of_input_not_the_input(peak_held, tmp_path, form):
    """10 batches through a repartition and a window: no topic of the run's broker ever holds
    more than a batch's records (and the windows' changelog), and the result is whole."""
    recs = [{"user": f"u{i % 50}", "amount": 20, "ts": i * 10} for i in range(5_000)]
    src: object = recs
    if form == "jsonl":
        src = tmp_path / "in.jsonl"
        src.write_text("".join(json.dumps(r) + "\n" for r in recs))
    out = st.run_bounded(_topology(), {"events": src}, batch_size=500, cache_max_entries=20)
    assert len(out["big"]) == 5_000 and sum(r.value["n"] for r in out["totals"]) == 5_000
    assert peak_held["events"] <= 500 and peak_held["big"] <= 500
    assert peak_held["backfill-per-10s-repartition"] <= 500 + 10  # (+ watermark records)
    assert 0 < peak_held["backfill-per-10s-changelog"] <= 500


def test_progress_of_a_bounded_run(capsys):
    recs = [{"user": "a", "amount": 20, "ts": i} for i in range(3_000)]
    st.run_bounded(_topology(), {"events": recs}, batch_size=1_000, progress=True)
    err = capsys.readouterr().err
    assert err.startswith("events: ") and "events: 3,000 records in " in err
