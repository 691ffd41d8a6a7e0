"""The open windows as an Arrow table (ArrowWindows) against the window-object view alone:
the same closed windows in the same order, changelog records and store contents; restored
stores adopted; anything Arrow can't hold exactly handed back to the objects."""

from __future__ import annotations

import pickle
import random

import pyarrow as pa
import pytest

import streams as st
from operators.windowed_arrow import ArrowWindows
from state.backend import MemoryBackend
from state.encoding import INT64_MAX, INT64_MIN
from state.window import WindowStore
from state.window_objects import MISSING, ObjectWindows
from streams import agg, windows
from streams.core.serde import KEY
from streams.testing import TopologyTestDriver

SPECS = [("count", None), ("sum", None), ("min", None), ("max", None), ("mean", None)]
_AGGS = [agg.count(), agg.sum("x"), agg.min("x"), agg.max("x"), agg.mean("x")]


def _partials(rng: random.Random, keys: list) -> pa.Table:
    """A batch's group-by (Partials.g) with random partial aggregates, nulls included."""
    pairs = list(dict.fromkeys((rng.choice(keys), rng.randrange(10) * 10) for _ in range(6)))
    n = len(pairs)

    def vals():
        return [None if rng.random() < 0.3 else rng.randrange(-50, 50) for _ in range(n)]

    sums = vals()
    return pa.table(
        {
            "k": [k for k, _ in pairs],
            "s": pa.array([s for _, s in pairs], pa.int64()),
            "count_all": pa.array([rng.randrange(1, 5) for _ in range(n)], pa.int64()),
            "v1_sum": pa.array(vals(), pa.int64()),
            "v2_min": pa.array(vals(), pa.int64()),
            "v3_max": pa.array(vals(), pa.int64()),
            "v4_sum": pa.array(sums, pa.int64()),
            "v4_count": pa.array([0 if x is None else rng.randrange(1, 4) for x in sums]),
        }
    )


def _merge_objects(view: ObjectWindows, g: pa.Table) -> None:
    """What the object path does with the same partials (the aggregations' own merges)."""
    rows = g.to_pylist()
    pairs = [(KEY.encode(r["k"]), r["s"]) for r in rows]
    accs = []
    for acc, r in zip(view.get_many(pairs), rows, strict=True):
        if acc is MISSING:
            acc = [a.init() for a in _AGGS]
        part = [r["count_all"], r["v1_sum"], r["v2_min"], r["v3_max"]]
        part.append((r["v4_sum"] or 0, r["v4_count"]))
        accs.append([a.merge(x, p) for a, x, p in zip(_AGGS, acc, part, strict=True)])
    view.put_many(zip(pairs, accs, strict=True))


def _closed(aw: ArrowWindows, t: pa.Table | None) -> list:
    assert t is not None
    return [
        (KEY.encode(k), s, acc)
        for k, s, acc in zip(
            t["k"].to_pylist(), t["s"].to_pylist(), aw.accumulators(t), strict=True
        )
    ]


def _contents(w: WindowStore) -> list:
    return [(k, s, pickle.loads(v)) for k, s, v in w.fetch_all(INT64_MIN, INT64_MAX)]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("keys", [["a", "b", "é", "ab"], [3, -1, 2**40]])
def test_arrow_windows_match_the_object_view_step_by_step(seed: int, keys: list) -> None:
    rng = random.Random(seed)
    arrow_view = ObjectWindows(WindowStore(MemoryBackend()))
    aw = ArrowWindows(arrow_view, SPECS)
    ref = ObjectWindows(WindowStore(MemoryBackend()))
    for _ in range(200):
        op = rng.random()
        if op < 0.6:
            g = _partials(rng, keys)
            aw.merge(g)
            _merge_objects(ref, g)
            assert arrow_view.dirty_count == ref.dirty_count
        elif op < 0.8:
            last = rng.randrange(-1, 10) * 10
            assert _closed(aw, aw.close_until(last)) == ref.close_until(last)
        elif op < 0.95:  # a commit
            arrow_view.flush_objects()
            ref.flush_objects()
            got, want = arrow_view.raw.flush(), ref.raw.flush()
            assert dict(got) == dict(want) and len(got) == len(want)
            assert _contents(arrow_view.raw) == _contents(ref.raw)
        else:  # a crash after the last commit: both start again from the store
            arrow_view.raw.take_dirty()
            ref.raw.take_dirty()
            arrow_view.discard_objects()
            ref.discard_objects()
    assert aw.active, "int and str partials stay on Arrow"


def test_an_overflow_hands_the_windows_to_the_objects_unchanged() -> None:
    view = ObjectWindows(WindowStore(MemoryBackend()))
    aw = ArrowWindows(view, [("sum", None)])
    big = pa.table({"k": ["a"], "s": [0], "v0_sum": pa.array([2**62], pa.int64())})
    aw.merge(big)
    with pytest.raises(pa.ArrowInvalid, match="overflow"):
        aw.merge(big)  # 2**63: not an int64
    assert aw.active and view.get(KEY.encode("a"), 0) is MISSING  # (still Arrow's)
    aw.materialize()  # (the processor then merges the batch into the objects, exactly)
    assert not aw.active and view.get(KEY.encode("a"), 0) == [2**62]
    assert aw.close_until(10) is None  # (the caller closes through the view now)


def test_keys_of_another_type_are_not_merged() -> None:
    view = ObjectWindows(WindowStore(MemoryBackend()))
    aw = ArrowWindows(view, [("count", None)])
    aw.merge(pa.table({"k": ["a"], "s": [0], "count_all": [1]}))
    with pytest.raises(Exception, match="keys of type int64 after string"):
        aw.merge(pa.table({"k": [1], "s": [0], "count_all": [1]}))
    assert aw.close_until(0)["a0"].to_pylist() == [1]


def _topology(execution: str) -> st.Topology:
    t = st.Topology("aw", execution=execution)
    (
        t.source("in", key=st.serde.JSON)
        .window("w", windows.hopping(ms=4000, advance=1000), emit="final")
        .aggregate(n=agg.count(), s=agg.sum("x"), lo=agg.min("x"), avg=agg.mean("x"))
        .to("out", key=st.serde.JSON)
    )
    return t


def _crash_run(execution: str, recs: list, spy: list | None = None) -> tuple:
    d = TopologyTestDriver(_topology(execution), auto_commit=False)
    third = len(recs) // 3
    d.pipe_many("in", recs[:third])
    d.commit()
    d.pipe_many("in", recs[third : 2 * third])  # lost in the crash, then read again
    d.crash()
    d.restart()
    for i in range(third, len(recs), 50):
        d.pipe_many("in", recs[i : i + 50])
        d.commit()
    if spy is not None:
        spy.extend(getattr(p, "_arrow", None) for t in d.tasks.values() for p in t.timed)
    d.end_of_input()
    out = [(r.key, r.value, r.timestamp) for r in d.read("out")]
    log = d.broker.fetch_raw(st.TopicPartition("aw-w-changelog", 0), 0)
    latest = {m[0]: m[1] for m in log}
    return out, latest


def test_a_crash_and_restore_give_the_row_paths_results_and_changelog() -> None:
    rng = random.Random(3)
    recs = [(f"u{rng.randrange(20)}", {"x": rng.randrange(100)}, i * 37) for i in range(1500)]
    spy: list = []
    got = _crash_run("columnar", recs, spy)
    assert got == _crash_run("row", recs)
    assert got[0] and got[1]
    arrow = [a for a in spy if a is not None]
    assert arrow and all(a.active for a in arrow), "the restored windows were adopted"


def test_float_values_run_on_the_objects_with_equal_results() -> None:
    recs = [(f"u{i % 7}", {"x": i / 3}, i * 37) for i in range(600)]
    spy: list = []
    assert _crash_run("columnar", recs, spy) == _crash_run("row", recs)
    assert not any(a.active for a in spy if a is not None)


def test_auto_moves_the_windows_to_arrow_for_large_batches_and_back_for_small_ones() -> None:
    from operators.windowed import SMALL_BATCHES

    rng = random.Random(8)
    recs = [(f"u{rng.randrange(30)}", {"x": rng.randrange(100)}, i * 11) for i in range(3000)]
    sizes = [600] + [10] * (SMALL_BATCHES + 4) + [600, 600]

    def run(execution: str) -> tuple[list, list]:
        d = TopologyTestDriver(_topology(execution))
        (proc,) = [p for t in d.tasks.values() for p in t.timed if hasattr(p, "_arrow")]
        states, i = [], 0
        for n in sizes:
            d.pipe_many("in", recs[i : i + n])
            i += n
            states.append(proc._arrow is not None and proc._arrow.active)
        d.pipe_many("in", recs[i:])
        d.end_of_input()
        return [(r.key, r.value, r.timestamp) for r in d.read("out")], states

    got, states = run("auto")
    want, _ = run("row")
    assert got == want and len(want) > 100
    small = SMALL_BATCHES + 4
    assert states[0] and all(states[1:SMALL_BATCHES])  # small batches on Arrow at first,
    assert not any(states[SMALL_BATCHES : small + 1])  # then the objects,
    assert states[small + 1] and states[small + 2]  # and Arrow again for large ones


def test_a_query_mid_stream_sees_the_arrow_windows() -> None:
    """Reading the window store (interactive queries go through TaskStores.raw) flushes the
    open windows into it, as with the objects."""
    rng = random.Random(4)
    recs = [(f"u{rng.randrange(9)}", {"x": rng.randrange(50)}, i * 13) for i in range(900)]

    def open_windows(execution: str) -> list:
        d = TopologyTestDriver(_topology(execution), auto_commit=False)
        d.pipe_many("in", recs)
        (task,) = [t for t in d.tasks.values() if t.stores is not None]
        assert task.stores is not None
        store = task.stores.raw("w")
        return [(k, s, pickle.loads(v)) for k, s, v in store.fetch_all(INT64_MIN, INT64_MAX)]

    got = open_windows("columnar")
    assert got == open_windows("row") and len(got) > 20
