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
        hs.sampled_from(["x", "f", "s"]).map(lambda f: agg.argmax(f, keep=("x", "s"))),
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


def _run(execution, recs, named, window, emit, chunks, then=False):
    t = st.Topology("wprop", execution=execution)
    w = t.source("in", key=st.serde.JSON).window("w", window, emit=emit)
    out = w.aggregate(**named)
    if then:  # a columnar chain after the windows (closed windows reach it as one Arrow batch)
        out = out.with_columns(k=st.key(), end=st.col("window_end") - 1)
        out = out.filter(st.col("window_start") % 2000 == 0)
    out.to("out", key=st.serde.JSON)
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
    hs.booleans(),
)
def test_windowed_columnar_equals_row(recs, named, window, emit, chunks, then):
    want = _run("row", recs, named, window, emit, chunks, then)
    assert _run("columnar", recs, named, window, emit, chunks, then) == want


def test_the_columnar_path_runs():
    from operators import windowed_columnar

    calls = []
    real = windowed_columnar.WindowBatch.table

    def spy(self, rows, wm):
        got = real(self, rows, wm)
        calls.append(got.g.num_rows)
        return got

    windowed_columnar.WindowBatch.table = spy
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
        windowed_columnar.WindowBatch.table = real
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


def _hot_items(execution, recs):
    """Nexmark q5's shape: counts per (key, hopping window), re-keyed by window with
    expressions, then the argmax per window."""
    t = st.Topology("hot", execution=execution)
    counts = (
        t.source("in", key=st.serde.JSON)
        .window("counts", windows.hopping(ms=4000, advance=1000))
        .count()
    )
    (
        counts.with_columns(item=st.key())
        .key_by(st.col("window_start"))
        .window("top", windows.tumbling(ms=1000))
        .aggregate(rows=agg.argmax("n", keep=("item", "n", "window_start")))
        .to("out", key=st.serde.JSON)
    )
    d = TopologyTestDriver(t)
    d.pipe_many("in", recs)
    d.end_of_input()
    return [(r.key, r.value, r.timestamp) for r in d.read("out")]


def test_argmax_and_closed_windows_run_on_arrow():
    from operators import windowed, windowed_columnar

    seen = {"ties": 0, "emitted": 0}
    real_ties = windowed_columnar._ties
    real_emit = windowed.WindowedAggregateProcessor._push_closed

    def ties(*a):
        out = real_ties(*a)
        seen["ties"] += len(out)
        return out

    def emit(self, cols, keys, starts, size):  # (closed windows leaving as one Arrow batch)
        seen["emitted"] += len(starts)
        return real_emit(self, cols, keys, starts, size)

    windowed_columnar._ties = ties
    windowed.WindowedAggregateProcessor._push_closed = emit
    recs = [(f"i{(i * 7) % 5}", {}, i * 37) for i in range(400)]
    try:
        got = _hot_items("columnar", recs)
    finally:
        windowed_columnar._ties = real_ties
        windowed.WindowedAggregateProcessor._push_closed = real_emit
    assert seen["ties"] > 0 and seen["emitted"] > 0
    assert got == _hot_items("row", recs)
    # every window's hottest items, ties included, as a batch computation says
    counts = {}
    for k, _, t in recs:
        for start in range(t - t % 1000 - 3000, t - t % 1000 + 1, 1000):
            counts.setdefault(start, {}).setdefault(k, 0)
            counts[start][k] += 1
    want = {
        start: sorted((k, n) for k, n in c.items() if n == max(c.values()))
        for start, c in counts.items()
    }
    assert {k: sorted((r["item"], r["n"]) for r in v["rows"]) for k, v, _ in got} == want


@settings(max_examples=100, deadline=None)
@given(hs.lists(hs.tuples(hs.sampled_from(["a", "b", "c"]), hs.just({}), hs.integers(0, 20_000))))
def test_hot_items_columnar_equals_row(recs):
    assert _hot_items("columnar", recs) == _hot_items("row", recs)
