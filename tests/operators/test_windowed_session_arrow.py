"""Session windows over whole Arrow batches (operators.windowed_session_arrow) equal the
record-by-record path: random keys (null too), event times in and out of order, values (ints
near int64's edge, floats, strings, nulls), order-free aggregations, gaps and grace, fed in
several batches through a repartition topic (records carrying their watermarks)."""

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as hs

import streams as st
from operators import windowed_session
from streams import agg, windows
from streams.testing import TopologyTestDriver

SCHEMA = pa.schema(
    [("k", pa.string()), ("t", pa.int64()), ("x", pa.int64()), ("f", pa.float64()),
     ("s", pa.string())]
)  # fmt: skip
record = hs.fixed_dictionaries(
    {
        "k": hs.sampled_from([None, "k1", "k2", "k3"]),
        "t": hs.integers(-10, 120).map(lambda x: x * 500),  # (often exactly a gap apart)
    },
    optional={
        "x": hs.one_of(hs.none(), hs.integers(-100, 100), hs.integers(-(2**62), 2**62)),
        "f": hs.one_of(hs.none(), hs.floats(allow_nan=False, allow_infinity=False)),
        "s": hs.one_of(hs.none(), hs.text(alphabet="abc", max_size=3)),
    },
)
aggs = hs.dictionaries(
    hs.sampled_from(["a", "b", "c"]),
    hs.one_of(
        hs.just(agg.count()),
        hs.sampled_from(["x", "f"]).map(agg.sum),
        hs.sampled_from(["x", "s"]).map(agg.min),
        hs.sampled_from(["x", "s"]).map(agg.max),
        hs.just(agg.mean("x")),
    ),
    min_size=1,
    max_size=3,
)


def _run(execution, recs, named, gap, grace, chunks):
    t = st.Topology("sprop", execution=execution)
    src = t.source("in", schema=SCHEMA, timestamp="t").key_by(st.col("k"))
    w = src.window("w", windows.session(ms=gap, grace=grace)).aggregate(**named)
    w.to("out", key=st.serde.JSON)
    d = TopologyTestDriver(t)
    size = max(1, len(recs) // chunks)
    for i in range(0, len(recs), size):
        d.pipe_many("in", recs[i : i + size])
    mid = sorted(repr((r.key, r.value, r.timestamp)) for r in d.read("out"))
    d.end_of_input()
    out = sorted(repr((r.key, r.value, r.timestamp)) for r in d.read("out"))
    return mid, out


@settings(max_examples=150, deadline=None)
@given(
    hs.lists(record, min_size=5, max_size=40),
    aggs,
    hs.sampled_from([1_000, 5_000]),
    hs.sampled_from([0, 1_500]),
    hs.integers(1, 4),
    hs.booleans(),
)
def test_sessions_on_arrow_equal_row(recs, named, gap, grace, chunks, in_order):
    if in_order:  # (records after their watermark: the batches run on Arrow)
        recs = sorted(recs, key=lambda r: r["t"])
    assert _run("columnar", recs, named, gap, grace, chunks) == _run(
        "row", recs, named, gap, grace, chunks
    )


def test_the_arrow_path_runs_and_merges_with_stored_sessions(monkeypatch):
    calls = []
    real = windowed_session.SessionWindowsProcessor._merge_sessions

    def spy(self, micros):
        calls.append(len(micros))
        return real(self, micros)

    monkeypatch.setattr(windowed_session.SessionWindowsProcessor, "_merge_sessions", spy)
    recs = [{"k": f"u{i % 3}", "t": i * 400, "x": i} for i in range(60)]
    named = {"n": agg.count(), "top": agg.max("x")}
    got = _run("columnar", recs, named, 2_000, 0, 3)
    assert calls and sum(calls) < 60  # (micro-sessions, not records)
    assert got == _run("row", recs, named, 2_000, 0, 3)
    assert len(got[1]) == 3  # one session per key, across the three batches


def test_a_batch_joins_a_stored_session_exactly_a_gap_away():
    recs = [{"k": "a", "t": t, "x": 1} for t in (0, 500, 1_500, 2_000, 4_000)]
    for execution in ("columnar", "row"):
        mid, out = _run(execution, recs, {"n": agg.count()}, 1_000, 0, 2)
        assert sorted(mid + out) == sorted(
            [
                repr(("a", {"n": 4, "window_start": 0, "window_end": 2_000}, 2_000)),
                repr(("a", {"n": 1, "window_start": 4_000, "window_end": 4_000}, 4_000)),
            ]
        ), execution
