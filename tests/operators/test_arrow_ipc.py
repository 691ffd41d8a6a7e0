"""Arrow batches through repartition topics: columnar writers send Arrow IPC messages, and the
results are the row mode's (keys, windows, late records, partitions)."""

from hypothesis import given, settings
from hypothesis import strategies as hs

import streams as st
from operators import arrow_ipc
from operators.sink import canonical_key_bytes
from streams import agg, windows
from streams.core.partitioner import Partitioner
from streams.runtime.broker import TopicPartition
from streams.testing import TopologyTestDriver

keys = hs.one_of(
    hs.sampled_from([None, "a", "b", "c", "ü"]),  # strings
    hs.sampled_from([None, 0, 1, -7, 2**62]),  # ints
    hs.sampled_from([None, True, False]),  # Arrow could carry them, not exactly: per record
)
record = hs.tuples(hs.integers(0, 4), hs.integers(-50, 50), hs.integers(0, 40_000))


def _topology(execution, window, emit):
    t = st.Topology("ipc", execution=execution)
    by = t.source("in").key_by(st.col("k"))
    w = by.window("w", window, emit=emit)
    w.aggregate(n=agg.count(), s=agg.sum("x")).to("out", key=st.serde.JSON)
    w.late().to("late", key=st.serde.JSON)
    return t


def _run(execution, recs, key_pool, window, emit, partitions, chunks):
    d = TopologyTestDriver(_topology(execution, window, emit), partitions=partitions)
    size = max(1, len(recs) // chunks)
    for i in range(0, len(recs), size):
        d.pipe_many("in", [(None, {"k": key_pool[k], "x": x}, t) for k, x, t in recs[i : i + size]])
    d.end_of_input()
    out = [(r.key, r.value, r.timestamp, r.partition) for r in d.read("out")]
    late = [(r.key, r.value, r.timestamp) for r in d.read("late")]
    (topic,) = [it.name for it in d.plan.internal_topics if it.kind == "repartition"]
    msgs = [
        (p, m) for p in range(partitions) for m in d.broker.fetch_raw(TopicPartition(topic, p), 0)
    ]
    d.close()
    return repr((out, late)), msgs


spec = hs.sampled_from(
    [windows.tumbling(ms=5_000), windows.hopping(ms=10_000, advance=2_000, grace=1_000)]
)


@settings(max_examples=60, deadline=None)
@given(
    hs.lists(record, max_size=60),
    hs.lists(keys, min_size=5, max_size=5),
    spec,
    hs.sampled_from(["update", "final"]),
    hs.integers(1, 3),
    hs.integers(1, 3),
)
def test_columnar_repartition_equals_row(recs, key_pool, window, emit, partitions, chunks):
    want, _ = _run("row", recs, key_pool, window, emit, partitions, chunks)
    got, msgs = _run("columnar", recs, key_pool, window, emit, partitions, chunks)
    assert got == want
    part = Partitioner()
    for p, m in msgs:  # every Arrow message holds only records of its partition's keys
        if arrow_ipc.is_arrow(m[3]):
            for k, *_ in arrow_ipc.decode([m[1]], [m[4]]).to_rows():
                assert k is None or part.partition(canonical_key_bytes(k), partitions) == p


def test_plain_keys_go_as_arrow_and_others_record_by_record():
    recs = [(i % 3, i, i * 100) for i in range(30)]
    w = windows.tumbling(ms=1_000)
    want, rows_msgs = _run("row", recs, ["a", "b", None, "c", "d"], w, "update", 2, 1)
    got, msgs = _run("columnar", recs, ["a", "b", None, "c", "d"], w, "update", 2, 1)
    assert got == want
    data = [m for _, m in msgs if m[1] is not None]
    assert data and all(arrow_ipc.is_arrow(m[3]) for m in data)
    assert not any(arrow_ipc.is_arrow(m[3]) for _, m in rows_msgs)
    _, msgs = _run("columnar", recs, [True, False, None, True, False], w, "update", 2, 1)
    data = [m for _, m in msgs if m[1] is not None]
    assert data and not any(arrow_ipc.is_arrow(m[3]) for m in data)  # bools: pickled


def test_a_large_batch_is_split_into_bounded_messages(monkeypatch):
    monkeypatch.setattr(arrow_ipc, "MAX_MESSAGE_BYTES", 2_000)
    recs = [(i % 4, i, i) for i in range(3_000)]
    w = windows.tumbling(ms=100_000)
    want, _ = _run("row", recs, ["a", "b", "c", "d", "e"], w, "final", 1, 1)
    got, msgs = _run("columnar", recs, ["a", "b", "c", "d", "e"], w, "final", 1, 1)
    assert got == want
    arrow = [m for _, m in msgs if arrow_ipc.is_arrow(m[3])]
    assert len(arrow) > 10 and all(len(m[1]) < 8_000 for m in arrow)


def test_a_row_mode_reader_reads_the_arrow_batches_a_columnar_run_left():
    """A restart with execution="row" still reads the repartition topic's Arrow messages."""
    import pyarrow as pa

    w = windows.tumbling(ms=1_000)
    recs = [(i % 3, i, i * 100) for i in range(20)]
    want, _ = _run("row", recs, ["a", "b", "c", "d", "e"], w, "final", 1, 1)
    d = TopologyTestDriver(_topology("row", w, "final"))
    (topic,) = [it.name for it in d.plan.internal_topics if it.kind == "repartition"]
    pool = ["a", "b", "c"]
    keys = pa.array([pool[k] for k, _, _ in recs])
    cols = {"k": keys, "x": pa.array([x for _, x, _ in recs])}
    (msg,) = arrow_ipc.encode(keys, [t for *_, t in recs], cols, None)
    d.pipe_raw(topic, None, msg, timestamp=1_900, headers=arrow_ipc.HEADERS, partition=0)
    d.end_of_input()
    out = [(r.key, r.value, r.timestamp, r.partition) for r in d.read("out")]
    assert repr((out, [])) == want


def test_messages_of_different_fields_decode_as_one_batch_each_in_order():
    import pyarrow as pa

    from operators.columnar import ColumnarBatch

    def msg(cols, key, t):
        b = ColumnarBatch(cols, 1, keys=[None], ts=[t], headers=[()], offsets=[0])
        b.key = pa.array([key])
        (m,) = arrow_ipc.encode(*arrow_ipc.parts(b), None)
        return m

    a1, a2 = msg({"x": pa.array([1])}, "a", 5), msg({"x": pa.array([2])}, "b", 6)
    y = msg({"x": pa.array([3]), "y": pa.array(["s"])}, "c", 7)
    runs = arrow_ipc.decode_runs([a1, a2, y, a1], [0, 1, 2, 3])
    assert [(b.to_rows(), k) for b, _, _, k in runs] == [
        ([("a", {"x": 1}, 5, (), 0), ("b", {"x": 2}, 6, (), 1)], 2),
        ([("c", {"x": 3, "y": "s"}, 7, (), 2)], 1),
        ([("a", {"x": 1}, 5, (), 3)], 1),
    ]


def test_a_merge_of_columnar_chains_of_different_fields_repartitions_as_arrow():
    import pyarrow as pa

    schema = pa.schema([("kind", pa.string()), ("id", pa.int64()), ("name", pa.string())])
    outs = []
    for execution in ("row", "auto"):
        t = st.Topology("merge", execution=execution)
        src = t.source("in", schema=schema if execution == "auto" else None)
        people = src.filter(st.col("kind") == "p").key_by("id").select("kind", "name")
        others = src.filter(st.col("kind") == "o").key_by("id").select("kind")
        both = people.merge(others, name="both")
        both.window("w", windows.tumbling(ms=100)).aggregate(all=agg.collect()).to(
            "out", key=st.serde.JSON
        )
        if execution == "auto":
            (line,) = [x for x in t.describe().splitlines() if "(merge)" in x]
            assert "[columnar]" in line
        d = TopologyTestDriver(t)
        recs = [{"kind": "po"[i % 2], "id": i % 7, "name": f"n{i}"} for i in range(1_200)]
        d.pipe_many("in", [(None, r, i) for i, r in enumerate(recs)])
        d.end_of_input()
        outs.append(sorted(d.read_key_values("out"), key=repr))
    assert len(outs[0]) > 50
    assert outs[0] == outs[1]
