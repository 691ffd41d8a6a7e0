"""Sources with Arrow IPC values: each message's rows are records, decoded in bulk into one
columnar batch; row and columnar execution agree; bad messages go to the dead-letter topic."""

import pyarrow as pa
import pytest

import streams as st
from streams.core.serdes import ARROW_IPC
from streams.runtime.broker import TopicPartition
from streams.testing import TopologyTestDriver

from ._pipelines import tx_pipeline


def _messages():
    """Three messages of 4, 0 and 3 rows; the last has an extra column (unified: null)."""
    a = pa.table(
        {"user": ["ann", "bo", "ann", "cy"], "amount": [5, 70, 12, 90], "ts": [1, 2, 3, 4]}
    )
    empty = a.slice(0, 0)
    c = pa.table(
        {"user": ["bo", "ann", "bo"], "amount": [8, 99, 1], "ts": [1500, 1600, 2500], "x": [1] * 3}
    )
    return [ARROW_IPC.serialize(t) for t in (a, empty, c)]


def _topology(execution, on_error="fail"):
    t = st.Topology("ipc", execution=execution)
    s = t.source("in", value=ARROW_IPC, timestamp=st.col("ts"), on_error=on_error)
    tx_pipeline(s)
    return t


def _run(execution, msgs, on_error="fail"):
    d = TopologyTestDriver(_topology(execution, on_error))
    for i, m in enumerate(msgs):
        d.broker.append("in", 0, b"k%d" % i, m, 10 + i)
    d._run()
    d.end_of_input()
    return d, {
        topic: [(r.key, r.value, r.timestamp) for r in d.read(topic)] for topic in ("big", "counts")
    }


@pytest.mark.parametrize("execution", ["row", "columnar", "auto"])
def test_rows_of_every_message_are_records(execution):
    _, got = _run(execution, _messages())
    assert got["big"] == [
        ("k0", {"user": "bo", "cents": 7000}, 2),  # (each row keeps its message's key)
        ("k0", {"user": "ann", "cents": 1200}, 3),
        ("k0", {"user": "cy", "cents": 9000}, 4),
        ("k2", {"user": "ann", "cents": 9900}, 1600),
    ]
    assert sorted((k, v["n"], v["window_start"]) for k, v, _ in got["counts"]) == [
        ("ann", 1, 0),
        ("ann", 1, 1000),
        ("bo", 1, 0),
        ("cy", 1, 0),
    ]


def test_the_batch_is_decoded_once_into_arrow():
    from operators import arrow_values

    calls = []
    real = arrow_values.ArrowValuesDecoder.batches

    def spy(self, msgs):
        out = real(self, msgs)
        calls.append((len(msgs), [b.n for b in out]))
        return out

    arrow_values.ArrowValuesDecoder.batches = spy
    try:
        _run("columnar", _messages())
    finally:
        arrow_values.ArrowValuesDecoder.batches = real
    assert calls == [(3, [7])]


def test_message_key_timestamp_and_offset_are_every_row_s():
    t = st.Topology("ipc-meta")
    t.source("in", key=st.serde.STR, value=ARROW_IPC).to("out", key=st.serde.STR)
    d = TopologyTestDriver(t)
    d.broker.append("in", 0, b"batch-1", ARROW_IPC.serialize([{"n": 1}, {"n": 2}]), 77)
    d._run()
    assert [(r.key, r.value, r.timestamp) for r in d.read("out")] == [
        ("batch-1", {"n": 1}, 77),
        ("batch-1", {"n": 2}, 77),
    ]


def test_an_undecodable_message_goes_to_the_dead_letter_topic_with_its_bytes():
    msgs = _messages()
    msgs.insert(1, b"not arrow at all")
    d, got = _run("columnar", msgs, on_error="dead_letter")
    assert len(got["big"]) == 4  # the good messages' records, all of them
    dlq = d.broker.fetch(TopicPartition("ipc-dlq", 0), 0)
    assert [(m.key, m.value) for m in dlq] == [(b"k1", b"not arrow at all")]
    headers = dict(dlq[0].headers)
    assert headers["streams.error.type"] == b"SerializationError"
    assert headers["streams.source.offset"] == b"1"


def test_an_undecodable_message_fails_naming_it_by_default():
    msgs = _messages()
    msgs.insert(1, b"\x00\x01")
    with pytest.raises(st.SerializationError, match="offset 1"):
        _run("columnar", msgs)


def test_the_serde_round_trips_tables_batches_and_dicts():
    t = pa.table({"a": [1, 2]})
    assert ARROW_IPC.deserialize(ARROW_IPC.serialize(t)) == [{"a": 1}, {"a": 2}]
    assert ARROW_IPC.deserialize(ARROW_IPC.serialize(t.to_batches()[0])) == [{"a": 1}, {"a": 2}]
    assert ARROW_IPC.deserialize(ARROW_IPC.serialize({"a": 3})) == [{"a": 3}]
    assert ARROW_IPC.serialize(None) is None
    with pytest.raises(st.SerializationError):
        ARROW_IPC.serialize(42)
    with pytest.raises(st.SerializationError):
        ARROW_IPC.deserialize(b"junk")
