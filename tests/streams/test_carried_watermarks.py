"""Records carry their watermark over repartition topics (streams.core.wire).

A columnar repartition sends Arrow messages even when the watermark moves between their records
(each record's in the ``__wm`` column), a row repartition puts it in a header of the records it
rose before, and the reader judges every record as when the records are piped one by one.
Messages without them (an older writer) still read.
"""

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

import streams as st
from operators import arrow_ipc
from operators.event_time import EventTime
from operators.sink import SinkProcessor
from streams import agg, windows
from streams.core.wire import RECORD_WM_HEADER, control_of, decode_control
from streams.runtime.broker import TopicPartition
from streams.runtime.watermarks import IDLE, WatermarkTracker


def _topology(execution):
    t = st.Topology("carried", execution=execution)
    by = t.source("in", timestamp="ts", max_out_of_orderness=500).key_by(st.col("k"))
    w = by.window("w", windows.tumbling(ms=1_000, grace=200))
    w.aggregate(n=agg.count(), s=agg.sum("x")).to("out", key=st.serde.JSON)
    w.late().to("late", key=st.serde.JSON)
    return t


def _events(n=400, seed=3):
    import random

    rng = random.Random(seed)
    ts, out = 0, []
    for i in range(n):
        ts += rng.randint(0, 60)
        late = rng.random() < 0.15  # some out of order, past the bound and the grace
        out.append(
            {"k": rng.choice("abcd"), "x": i, "ts": ts - (rng.randint(0, 2_500) if late else 0)}
        )
    return out


def _run(execution, events, batch, partitions):
    d = st.TopologyTestDriver(_topology(execution), partitions=partitions)
    d.pipe_many("in", [(str(e["x"]), e, e["ts"]) for e in events], batch_size=batch)
    d.end_of_input()
    late = [m for p in range(partitions) for m in d.broker.fetch_raw(TopicPartition("late", p), 0)]
    assert not any(k == RECORD_WM_HEADER for m in late for k, _ in m[3])  # stripped
    res = sorted(
        (topic, repr(r.key), repr(sorted(r.value.items())))
        for topic in ("out", "late")
        for r in d.read(topic)
    )
    (topic,) = [it.name for it in d.plan.internal_topics if it.kind == "repartition"]
    msgs = [m for p in range(partitions) for m in d.broker.fetch_raw(TopicPartition(topic, p), 0)]
    d.close()
    return res, msgs


@pytest.mark.parametrize("partitions", [1, 2])
def test_columnar_repartition_sends_arrow_with_each_records_watermark(partitions):
    events = _events()
    got, msgs = _run("columnar", events, None, partitions)  # one batch: marks move inside it
    assert got == _run("row", events, None, partitions)[0]
    if partitions == 1:  # (with two writers, how their batches interleave on a partition
        # decides what each record sees of the other writer's watermark, as with rows)
        assert got == _run("row", events, 1, partitions)[0]
    assert any(t == "late" for t, _, _ in got)  # (the point: lateness inside a batch)
    data = [m for m in msgs if control_of(m[3]) is None]
    assert data and all(arrow_ipc.is_arrow(m[3]) for m in data)  # no fallback to rows
    assert len(data) <= 2 * partitions  # (one message per partition and batch, not per record)
    carried = [arrow_ipc.decode_run([m[1]], [0])[1][0] for m in data]
    assert all(w is not None for w in carried)
    assert any(len(set(w.to_pylist())) > 1 for w in carried)  # the watermark moved inside
    for m, w in zip(data, carried, strict=True):  # the header: the writer and the largest
        (payload,) = [v for k, v in m[3] if k == RECORD_WM_HEADER]
        assert decode_control(payload)[2] == max(w.to_pylist())


@pytest.mark.parametrize("batch", [None, 37])
@pytest.mark.parametrize("partitions", [1, 2])
def test_row_repartition_carries_headers_not_control_records(batch, partitions):
    events = _events()
    got, msgs = _run("row", events, batch, partitions)
    if partitions == 1:
        assert got == _run("row", events, 1, partitions)[0]
    assert any(t == "late" for t, _, _ in got)
    data = [m for m in msgs if control_of(m[3]) is None]
    controls = [m for m in msgs if control_of(m[3]) is not None]
    marked = [m for m in data if any(k == RECORD_WM_HEADER for k, _ in m[3])]
    assert len(marked) > 20  # the watermark rose before many records: they carry it
    batches = 1 if batch is None else -(-len(events) // batch)
    # control records only announce at the end of batches (and of the input), per partition
    assert len(controls) <= partitions**2 * (batches + 2) < len(marked)


def test_arrow_messages_without_watermarks_still_read(monkeypatch):
    """An older writer's Arrow messages (no ``__wm``, no header): their records are judged
    against the control records before them."""
    events = [e for e in _events() if e["x"] % 7]  # (in order: no lateness to depend on them)
    events.sort(key=lambda e: e["ts"])
    want, _ = _run("row", events, 1, 2)
    monkeypatch.setattr(SinkProcessor, "_marks_array", lambda self, batch: None)
    got, msgs = _run("columnar", events, 50, 2)
    data = [m for m in msgs if control_of(m[3]) is None]
    assert data and all(arrow_ipc.is_arrow(m[3]) for m in data)
    assert not any(k == RECORD_WM_HEADER for m in data for k, _ in m[3])
    assert got == want


def test_old_and_new_messages_in_one_run():
    """Records of a message without ``__wm`` get the mark of its offset; those of a message
    with it each their own (not the largest so far), never under the floor."""
    et = EventTime()
    et.start(0, None, 0, None)
    et.put([5, 6], [100, 200])
    et.carry({6: (200, None)})
    marks = et.carried([5, 6], [2, 3], [None, pa.array([100, 300, 260], pa.int64())])
    assert marks is not None and marks.values.to_pylist() == [100, 100, 200, 300, 260]
    assert et.carried([5], [2], [None]) is None


@settings(max_examples=200, deadline=None)
@given(
    hs.lists(hs.tuples(hs.integers(0, 2), hs.integers(-5, 50)), max_size=8),
    hs.integers(0, 2),
    hs.lists(hs.integers(-5, 60), min_size=1, max_size=6),
    hs.integers(0, 40),
)
def test_writer_bounds_are_what_the_tracker_says(before, writer, carried, source_ts):
    """A message's records, marked in one vectorized pass, each get the watermark the tracker
    would give had the writer announced that record's own carried watermark (a writer's
    records carry at least what it announced before them)."""

    def tracker():
        w = WatermarkTracker({"s": (0, None)}, [("r", 0), ("s", 0)], start_ms=0)
        w.observe("s", 0, source_ts, now_ms=0)
        for u, wm in before:
            w.observe_control("r", 0, u, 3, IDLE if wm < 0 else wm)
        return w

    announced = [wm for u, wm in before if u == writer and wm >= 0]
    carried = [max([x, *announced]) for x in carried]
    start = tracker().current(0)
    want = []
    for x in carried:  # each record on its own, from the same state
        w = tracker()
        w.observe_control("r", 0, writer, 3, x)
        want.append(max(start, w.current(0)))
    floor, cap = tracker().writer_bounds("r", 0, writer, 3, now_ms=0)
    et = EventTime()
    et.start(0, None, 0, None)
    et.put([0], [0])
    et.carry({0: (max(start, floor), cap)})
    got = et.carried([0], [len(carried)], [pa.array(carried, pa.int64())])
    assert got is not None and got.values.to_pylist() == want
