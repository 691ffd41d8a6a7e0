"""Fuzzed input through the decode path and a user function: no crash, nothing lost.

Every record is either processed (it is counted) or in the dead-letter topic (undecodable ones
with their original bytes), whatever the bytes: arbitrary bytes, truncated JSON, wrong types,
huge values, null keys, missing or negative timestamps.
"""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as s

import streams as st
from streams.runtime.broker import TopicPartition
from streams.testing import TopologyTestDriver

APP = "fuzz"


def topology() -> st.Topology:
    t = st.Topology(APP)
    (
        t.source(
            "in", key=st.serde.STR, value=st.serde.JSON, timestamp="ts", on_error="dead_letter"
        )
        .map_values(lambda v: {"double": v["amount"] * 2 + 0}, name="double")
        .on_error("dead_letter")
        .key_by(lambda v: "all", name="one-key")
        .count("n")
        .to("out", value=st.serde.INT)
    )
    return t


_json_scalars = s.one_of(
    s.none(),
    s.booleans(),
    s.integers(min_value=-(2**70), max_value=2**70),
    s.floats(allow_nan=False, allow_infinity=False),
    s.text(max_size=20),
)
_values = s.one_of(
    s.binary(max_size=64),  # arbitrary bytes
    s.builds(
        lambda amount, ts, extra: json.dumps({"amount": amount, "ts": ts, **extra}).encode(),
        _json_scalars,
        s.one_of(s.integers(min_value=-(2**40), max_value=2**45), _json_scalars),
        s.dictionaries(s.text(max_size=5), _json_scalars, max_size=3),
    ),
    s.builds(  # a good record cut short
        lambda n, cut: json.dumps({"amount": n, "ts": 1000 + n}).encode()[:cut],
        s.integers(min_value=0, max_value=10**6),
        s.integers(min_value=0, max_value=20),
    ),
    s.builds(
        lambda n: json.dumps({"amount": 1, "ts": 5, "pad": "x" * n}).encode(),
        s.integers(min_value=10_000, max_value=200_000),
    ),  # a large value
    s.just(b"null"),
    s.just(b"[1, 2, 3]"),
)
_records = s.lists(
    s.tuples(
        s.one_of(s.none(), s.binary(max_size=12), s.text(max_size=8).map(str.encode)),
        s.one_of(s.none(), _values),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=_records)
def test_every_record_is_counted_or_dead_lettered(records):
    d = TopologyTestDriver(topology(), partitions=2)
    for key, value in records:
        d.pipe_raw("in", key, value)
    counted = d.store("n").get("all", 0)
    dlq = list(d.broker.fetch(TopicPartition(f"{APP}-dlq", 0), 0))
    assert counted + len(dlq) == len(records)
    decode_failures = [m for m in dlq if dict(m.headers)["streams.error.step"] != b"double"]
    originals = {(k, v) for k, v in records}
    for m in decode_failures:  # the bytes as they came in
        assert (m.key, m.value) in originals
    for m in dlq:
        assert dict(m.headers)["streams.error.message"]


def test_the_kinds_of_bad_input_each_end_where_expected():
    d = TopologyTestDriver(topology())
    good = json.dumps({"amount": 3, "ts": 10}).encode()
    cases = {
        b"k1": good,  # processed
        b"k2": good[:-3],  # truncated JSON: undecodable
        b"k3": b"\xff\xfe",  # not UTF-8 JSON
        b"k4": json.dumps({"amount": "3", "ts": 10}).encode(),  # wrong type: "3" * 2 + 0
        b"k5": json.dumps({"amount": 3}).encode(),  # no timestamp field
        b"k6": json.dumps({"amount": math.pi, "ts": 11}).encode(),  # processed
    }
    for k, v in cases.items():
        d.pipe_raw("in", k, v)
    d.pipe_raw("in", None, good)  # a null key: processed
    d.pipe_raw("in", b"k7", None)  # a null value: the user function fails on None
    steps = {
        m.key: dict(m.headers)["streams.error.step"]
        for m in d.broker.fetch(TopicPartition(f"{APP}-dlq", 0), 0)
    }
    assert d.store("n").get("all") == 3
    # undecodable or failed in the user function: the original key bytes
    assert steps.keys() == {b"k2", b"k3", b"k4", b"k5", b"k7"}
    assert steps[b"k4"] == b"double"
    assert {steps[k] for k in (b"k2", b"k3", b"k5", b"k7")} == {b"source-in"}
