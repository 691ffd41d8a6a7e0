"""Dead-letter records: an undecodable record and a record a step failed on are the source
record as fetched (key, value, timestamp, headers) with the same ``streams.*`` headers, byte
for byte as specified here and in docs/how-to/bad-records.md."""

import re
from pathlib import Path

import msgspec
import pytest

import streams as st
from streams.core.errors import ProcessingError, SerializationError, TopologyError
from streams.core.partitioner import partition_for
from streams.runtime.broker import TopicPartition
from streams.runtime.dead_letters import HEADERS, dead_letter_to, error_headers, reject_to
from streams.testing import TopologyTestDriver

DOC = Path(__file__).parents[3] / "docs" / "how-to" / "bad-records.md"


def _names(headers):
    return [k for k, _ in headers if k.startswith("streams.")]


def _topology(**kw):
    t = st.Topology("dl", on_error="dead_letter", **kw)
    (
        t.source("in", on_error="dead_letter")
        .map_values(lambda v: {"inv": 10 // v["n"]}, name="invert")
        .to("out")
    )
    return t


def test_decode_and_step_errors_carry_the_same_headers():
    d = TopologyTestDriver(_topology())
    d.broker.append("in", 0, b"k0", b"{broken", 100, [("trace", b"t0")])
    d.pipe("in", {"n": 0}, key="k1", timestamp=101, headers=[("trace", b"t1")])
    undecodable, failed = d.broker.fetch(TopicPartition("dl-dlq", 0), 0)

    assert (undecodable.key, undecodable.value) == (b"k0", b"{broken")  # bytes as they came
    assert undecodable.headers[0] == ("trace", b"t0")
    h = dict(undecodable.headers)
    assert _names(undecodable.headers) == list(HEADERS)
    assert h["streams.error.type"] == b"SerializationError"
    assert h["streams.error.step"] == b"source-in"
    assert h["streams.source.topic"] == b"in"
    assert (h["streams.source.partition"], h["streams.source.offset"]) == (b"0", b"0")
    assert h["streams.source.timestamp"] == b"100"
    assert h["streams.error.reencoded"] == b"false"

    # the step's failure: the source record's bytes (not the key re-encoded as JSON)
    assert (failed.key, failed.value) == (b"k1", b'{"n":0}')
    assert failed.headers[0] == ("trace", b"t1")
    h = dict(failed.headers)
    assert _names(failed.headers) == list(HEADERS)
    assert h["streams.error.type"] == b"ProcessingError"
    assert h["streams.error.step"] == b"invert"
    assert b"ZeroDivisionError" in h["streams.error.message"]
    assert h["streams.source.topic"] == b"in"
    assert (h["streams.source.offset"], h["streams.source.timestamp"]) == (b"1", b"101")
    assert h["streams.error.reencoded"] == b"false"


def test_a_step_error_keeps_a_str_key_and_the_value_bytes_as_they_came():
    t = st.Topology("raw", on_error="dead_letter", dead_letter_partitions=3)
    t.source("in", key=st.serde.STR).map_values(lambda v: v["missing"]).to("out")
    d = TopologyTestDriver(t, partitions=3)
    d.pipe_raw("in", b"b", b'{ "n" : 1 }', timestamp=5)  # (spaces: not how JSON re-encodes)
    (dead,) = d.read("raw-dlq")
    assert (dead.key, dead.value, dead.timestamp) == (b"b", b'{ "n" : 1 }', 5)
    # replaying it lands where the original did: same key bytes, same partition
    assert dict(dead.headers)["streams.source.partition"] == str(partition_for(b"b", 3)).encode()
    assert dead.partition == partition_for(b"b", 3)  # (the dead-letter topic: by key too)


def test_after_a_repartition_the_row_is_reencoded_and_says_so():
    t = st.Topology("re", on_error="dead_letter")
    (
        t.source("in")
        .key_by(st.col("g"))
        .count("n")
        .map_values(lambda n: 1 // 0, name="boom")
        .to("out")
    )
    d = TopologyTestDriver(t)
    d.pipe("in", {"g": "x"}, key="a")
    (dead,) = d.read("re-dlq")
    h = dict(dead.headers)
    assert h["streams.error.reencoded"] == b"true"
    assert _names(dead.headers) == list(HEADERS)
    assert (dead.key, dead.value) == (b'"x"', b"1")  # the step's key and value, as JSON


def test_dead_letter_topics_are_read_like_sinks():
    t = st.Topology("rd")
    src = t.source("in", on_error="dead_letter", dead_letter_topic="bad-in")
    src.map_values(lambda v: v["x"]).on_error("dead_letter").to("out")
    d = TopologyTestDriver(t)
    d.pipe_raw("in", b"k", b"nope")
    d.pipe("in", {"y": 1}, key="k2")
    assert d.read_values("bad-in") == [b"nope"]
    assert d.read_values("rd-dlq") == [b'{"y":1}']
    assert d.read_values("rd-dlq") == []  # read since the last read, as sinks are
    with pytest.raises(TopologyError, match="dead-letter topics: out, bad-in, rd-dlq"):
        d.read_values("elsewhere")


def test_late_output_written_to_a_topic_is_a_sink():
    t = st.Topology("lt")
    w = t.source("in", timestamp="ts").key_by(st.col("k")).window("w", st.windows.tumbling(10))
    w.aggregate(n=st.agg.count()).to("out", key=st.serde.JSON)
    w.late().to("late")
    d = TopologyTestDriver(t)
    d.pipe("in", {"k": "a", "ts": 100}, key="a")
    d.pipe("in", {"k": "a", "ts": 1}, key="a")
    assert [v["ts"] for v in d.read_values("late")] == [1]


def test_partitions_and_retention_of_the_dead_letter_topics_are_topology_settings():
    plan = _topology(dead_letter_partitions=6, dead_letter_retention_ms=86_400_000).compile()
    (dlq,) = [it for it in plan.internal_topics if it.kind == "dlq"]
    assert (dlq.name, dlq.partitions) == ("dl-dlq", 6)
    assert dlq.config == {"cleanup.policy": "delete", "retention.ms": "86400000"}
    default = _topology().compile()
    (dlq,) = [it for it in default.internal_topics if it.kind == "dlq"]
    assert (dlq.partitions, dlq.config) == (1, {"cleanup.policy": "delete"})
    d = TopologyTestDriver(_topology(dead_letter_partitions=4))
    assert d.broker.partition_count("dl-dlq") == 4


@pytest.mark.parametrize(
    "kw",
    [
        {"dead_letter_partitions": 0},
        {"dead_letter_partitions": True},
        {"dead_letter_retention_ms": 0},
        {"dead_letter_retention_ms": "1d"},
    ],
)
def test_bad_dead_letter_settings_are_refused(kw):
    with pytest.raises(TopologyError, match=next(iter(kw))):
        st.Topology("x", **kw)


def test_the_documented_headers_are_the_headers_sent():
    text = DOC.read_text()
    listed = re.findall(r"`(streams\.(?:error|source)\.[a-z]+)`", text)
    assert sorted(set(listed)) == sorted(HEADERS)


class _Owner:
    def __init__(self):
        self.sent = []
        self.partition = 3
        self.dead_lettered = 0
        self.collector = self
        self.decoders = {}
        self.internal_inputs = set()

    def send_batch(self, topic, partition, records):
        self.sent += [(topic, partition, r) for r in records]

    def partitions(self, topic):
        return 1


def test_records_are_built_exactly():
    owner = _Owner()
    err = ProcessingError("x" * 5000, step="s")
    reject_to(owner, "dlq")((object, {"a": 1}, 9, [("h", b"1")], 4), err)
    bad = SerializationError("bad")
    bad.topic = "src"
    dead_letter_to(owner, "dlq", "source-src")((b"k", b"v", 8, (), 2), bad)
    (t1, p1, r1), (t2, p2, r2) = owner.sent
    assert (t1, p1, t2, p2) == ("dlq", 0, "dlq", 0)
    assert r1 == (
        repr(object).encode(),
        msgspec.json.encode({"a": 1}),
        9,
        [
            ("h", b"1"),
            ("streams.error.type", b"ProcessingError"),
            ("streams.error.message", str(err).encode()[:4096]),
            ("streams.error.step", b"s"),
            ("streams.source.topic", b""),
            ("streams.source.partition", b"3"),
            ("streams.source.offset", b"4"),
            ("streams.source.timestamp", b"9"),
            ("streams.error.reencoded", b"true"),
        ],
    )
    assert r2 == (
        b"k",
        b"v",
        8,
        [
            ("streams.error.type", b"SerializationError"),
            ("streams.error.message", b"bad"),
            ("streams.error.step", b"source-src"),
            ("streams.source.topic", b"src"),
            ("streams.source.partition", b"3"),
            ("streams.source.offset", b"2"),
            ("streams.source.timestamp", b"8"),
            ("streams.error.reencoded", b"false"),
        ],
    )
    assert owner.dead_lettered == 2
    assert error_headers(None, err, "s", "", 3, 4, 9, True) == r1[3][1:]
