"""Dead-letter records: an undecodable record and a row a step failed on carry the same
``streams.*`` headers (the first also its source topic), byte for byte as specified here."""

import msgspec

import streams as st
from streams.core.errors import ProcessingError, SerializationError
from streams.runtime.broker import TopicPartition
from streams.runtime.dead_letters import dead_letter_to, error_headers, reject_to
from streams.testing import TopologyTestDriver

COMMON = [
    "streams.error.type",
    "streams.error.message",
    "streams.error.step",
    "streams.source.partition",
    "streams.source.offset",
    "streams.source.timestamp",
]


def _names(headers):
    return [k for k, _ in headers if k.startswith("streams.")]


def test_decode_and_step_errors_carry_the_same_headers():
    t = st.Topology("dl", on_error="dead_letter")
    (
        t.source("in", on_error="dead_letter")
        .map_values(lambda v: {"inv": 10 // v["n"]}, name="invert")
        .to("out")
    )
    d = TopologyTestDriver(t)
    d.broker.append("in", 0, b"k0", b"{broken", 100, [("trace", b"t0")])
    d.pipe("in", {"n": 0}, key="k1", timestamp=101, headers=[("trace", b"t1")])
    undecodable, failed = d.broker.fetch(TopicPartition("dl-dlq", 0), 0)

    assert (undecodable.key, undecodable.value) == (b"k0", b"{broken")  # bytes as they came
    assert undecodable.headers[0] == ("trace", b"t0")
    h = dict(undecodable.headers)
    assert _names(undecodable.headers) == [*COMMON[:3], "streams.source.topic", *COMMON[3:]]
    assert h["streams.error.type"] == b"SerializationError"
    assert h["streams.error.step"] == b"source-in"
    assert h["streams.source.topic"] == b"in"
    assert (h["streams.source.partition"], h["streams.source.offset"]) == (b"0", b"0")
    assert h["streams.source.timestamp"] == b"100"

    assert (failed.key, failed.value) == (b'"k1"', b'{"n":0}')  # as JSON
    assert failed.headers[0] == ("trace", b"t1")
    h = dict(failed.headers)
    assert _names(failed.headers) == COMMON
    assert h["streams.error.type"] == b"ProcessingError"
    assert h["streams.error.step"] == b"invert"
    assert b"ZeroDivisionError" in h["streams.error.message"]
    assert (h["streams.source.offset"], h["streams.source.timestamp"]) == (b"1", b"101")


class _Owner:
    def __init__(self):
        self.sent = []
        self.partition = 3
        self.dead_lettered = 0
        self.collector = self

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
            ("streams.source.partition", b"3"),
            ("streams.source.offset", b"4"),
            ("streams.source.timestamp", b"9"),
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
        ],
    )
    assert owner.dead_lettered == 2
    assert error_headers(None, err, "s", 3, 4, 9) == r1[3][1:]
