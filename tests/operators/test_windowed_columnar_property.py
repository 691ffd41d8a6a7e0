"""Windowed aggregation on Arrow (batch partial aggregates) equals the record-by-record path.

Random keys (null too), event times (negative too), values (ints near int64's edge, floats
with NaN, strings, nulls, missing fields), aggregations, tumbling and hopping windows with
grace, emit update or final, fed in several batches (so the watermark moves and records turn
late): results, late records and store contents must be equal.
"""

from hypothesis import given, settings
from hypothesis import strategies as hs

import streams as st
from streams import agg, windows
from streams.testing import TopologyTestDriver

values = hs.fixed_dictionaries(
    {},
    optional={
        "x": hs.one_of(hs.none(), hs.integers(-100, 100), hs.integers(-(2**62), 2**62)),
        "f": hs.one_of(hs.none(), hs.floats(allow_infinity=False)),
        "s": hs.one_of(hs.none(), hs.text(alphabet="abc", max_size=3)),
    },
)
record = hs.tuples(hs.sampled_from([None, "k1", "k2", "k3"]), values, hs.integers(-5_000, 60_000))
aggs = hs.dictionaries(
    hs.sampled_from(["a", "b", "c", "d"]),
    hs.one_of(
        hs.just(agg.count()),
        hs.sampled_from(["x", "f"]).map(agg.sum),
        hs.sampled_from(["x", "f", "s"]).map(agg.min),
        hs.sampled_from(["x", "f", "s"]).map(agg.max),
        hs.sampled_from(["x", "f"]).map(agg.mean),
        hs.just(agg.sum(st.col("x") * 2)),
    ),
    min_size=1,
    max_size=3,
)
spec = hs.one_of(
    hs.builds(
        lambda s, g: windows.tumbling(ms=s, grace=g),
        hs.sampled_from([1000, 7000]),
        hs.sampled_from([0, 2000]),
    ),
    hs.builds(
        lambda s, a, g: windows.hopping(ms=s, advance=a, grace=g),
        hs.sampled_from([4000, 10_000]),
        hs.sampled_from([1000, 3000]),
        hs.sampled_from([0, 1500]),
    ),
)


def _run(execution, recs, named, window, emit, chunks):
    t = st.Topology("wprop", execution=execution)
    w = t.source("in", key=st.serde.JSON).window("w", window, emit=emit)
    w.aggregate(**named).to("out", key=st.serde.JSON)
    w.late().to("late", key=st.serde.JSON)
    d = TopologyTestDriver(t)
    size = max(1, len(recs) // chunks)
    for i in range(0, len(recs), size):
        d.pipe_many("in", recs[i : i + size])
    mid = [(r.key, r.value, r.timestamp) for r in d.read("out")]
    d.end_of_input()
    out = [(r.key, r.value, r.timestamp) for r in d.read("out")]
    late = [(r.key, r.value, r.timestamp) for r in d.read("late")]
    return repr((mid, out, late))


@settings(max_examples=200, deadline=None)
@given(
    hs.lists(record, max_size=40),
    aggs,
    spec,
    hs.sampled_from(["update", "final"]),
    hs.integers(1, 4),
)
def test_windowed_columnar_equals_row(recs, named, window, emit, chunks):
    want = _run("row", recs, named, window, emit, chunks)
    assert _run("columnar", recs, named, window, emit, chunks) == want


def test_the_columnar_path_runs():
    from operators import windowed_columnar

    calls = []
    real = windowed_columnar.WindowBatch.partials

    def spy(self, rows, wm):
        got = real(self, rows, wm)
        calls.append(len(got[0]))
        return got

    windowed_columnar.WindowBatch.partials = spy
    try:
        recs = [("k1", {"x": i}, i * 100) for i in range(50)]
        out = _run(
            "columnar",
            recs,
            {"n": agg.count(), "s": agg.sum("x")},
            windows.hopping(ms=1000, advance=500),
            "update",
            1,
        )
    finally:
        windowed_columnar.WindowBatch.partials = real
    assert calls and calls[0] > 0
    assert out == _run(
        "row",
        recs,
        {"n": agg.count(), "s": agg.sum("x")},
        windows.hopping(ms=1000, advance=500),
        "update",
        1,
    )


def _run_keyed(execution, recs, named, chunks, single):
    t = st.Topology("kprop", execution=execution)
    s = t.source("in", key=st.serde.JSON)
    out = s.aggregate("agg", next(iter(named.values()))) if single else s.aggregate("agg", **named)
    out.to("out", key=st.serde.JSON)
    d = TopologyTestDriver(t)
    size = max(1, len(recs) // chunks)
    for i in range(0, len(recs), size):
        d.pipe_many("in", recs[i : i + size])
    got = [(r.key, r.value, r.timestamp) for r in d.read("out")]
    return repr((got, sorted(d.store("agg").items(), key=repr)))


@settings(max_examples=200, deadline=None)
@given(hs.lists(record, max_size=40), aggs, hs.integers(1, 4), hs.booleans())
def test_keyed_columnar_equals_row(recs, named, chunks, single):
    want = _run_keyed("row", recs, named, chunks, single)
    assert _run_keyed("columnar", recs, named, chunks, single) == want
