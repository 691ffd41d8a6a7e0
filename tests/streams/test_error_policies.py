"""Undecodable records: fail (default), skip, or dead-letter with the original bytes."""

import asyncio

import pytest

import streams as st
from streams.runtime.broker import TopicPartition
from streams.runtime.embedded import EmbeddedBroker
from streams.testing import TopologyTestDriver


def topology(on_error, dlq=None):
    t = st.Topology("ep")
    (
        t.source("in", timestamp="ts", on_error=on_error, dead_letter_topic=dlq)
        .map_values(st.col("n") * 2)
        .to("out")
    )
    return t


def feed(d):
    for i, raw in enumerate(
        [
            b'{"n": 1, "ts": 1}',
            b"{broken",
            b'{"n": 3, "ts": 3}',
            b'{"n": 4, "ts": "soon"}',
            b"\xff\xfe",
        ]
    ):
        d.broker.append("in", 0, f"k{i}".encode(), raw, 100 + i, [("trace", b"t%d" % i)])
    d._run()


def test_default_policy_fails_naming_the_record():
    d = TopologyTestDriver(topology("fail"))
    with pytest.raises(st.SerializationError, match="topic 'in', partition 0, offset 1"):
        feed(d)


def test_skip_drops_bad_records_and_keeps_the_rest():
    d = TopologyTestDriver(topology("skip"))
    feed(d)
    assert d.read_values("out") == [2, 6]
    assert sum(dec.skipped for t in d.tasks.values() for dec in t.decoders.values()) == 3


def test_dead_letter_keeps_original_bytes_and_says_why():
    d = TopologyTestDriver(topology("dead_letter"))
    assert "ep-dlq" in {it.name for it in d.plan.internal_topics}
    feed(d)
    assert d.read_values("out") == [2, 6]
    dlq = d.broker.fetch(TopicPartition("ep-dlq", 0), 0)
    assert [(m.key, m.value) for m in dlq] == [
        (b"k1", b"{broken"),
        (b"k3", b'{"n": 4, "ts": "soon"}'),
        (b"k4", b"\xff\xfe"),
    ]
    headers = dict(dlq[1].headers)
    assert headers["trace"] == b"t3"  # the record's own headers are kept
    assert headers["streams.error.type"] == b"ProcessingError"
    assert b"timestamp" in headers["streams.error.message"]
    assert headers["streams.source.offset"] == b"3"
    assert headers["streams.source.topic"] == b"in"
    assert headers["streams.error.step"] == b"source-in"
    assert dict(dlq[0].headers)["streams.error.type"] == b"SerializationError"


def test_named_dead_letter_topic_on_the_worker(tmp_path):
    b = EmbeddedBroker()
    b.create_topic("in", 1)
    b.create_topic("out", 1)
    b.append("in", 0, None, b"nope", 5)
    b.append("in", 0, None, b'{"n": 2, "ts": 5}', 5)
    w = st.Worker(topology("dead_letter", dlq="bad-input"), b, st.Config(state_dir=str(tmp_path)))
    asyncio.run(w.run(until_idle=True))
    assert [m.value for m in b.fetch(TopicPartition("bad-input", 0), 0)] == [b"nope"]
    assert [m.value for m in b.fetch(TopicPartition("out", 0), 0)] == [b"4"]


def test_bad_policy_name_is_rejected():
    with pytest.raises(st.TopologyError, match="on_error must be"):
        st.Topology("x").source("in", on_error="ignore")


@pytest.mark.parametrize("policy", ["skip", "dead_letter"])
def test_a_failing_user_function_loses_nothing_else(policy):
    t = st.Topology("pe", on_error=policy)
    t.source("in").map_values(lambda v: {"inv": 10 // v["n"]}, name="invert").to("out")
    d = TopologyTestDriver(t)
    d.pipe_many("in", [("a", {"n": 1}), ("b", {"n": 0}), ("c", {"n": 5})])
    assert d.read_values("out") == [{"inv": 10}, {"inv": 2}]
    if policy == "dead_letter":
        (m,) = d.broker.fetch(TopicPartition("pe-dlq", 0), 0)
        headers = dict(m.headers)
        assert (m.key, m.value) == (b"b", b'{"n":0}')  # the source record's bytes
        assert headers["streams.error.step"] == b"invert"
        assert b"ZeroDivisionError" in headers["streams.error.message"]
        assert headers["streams.source.offset"] == b"1"
        assert d.dropped == {}
    else:
        assert "pe-dlq" not in d.broker.topics
        assert d.dropped == {("invert", "error_skipped"): 1}


def test_processing_errors_fail_by_default():
    t = st.Topology("pf")
    t.source("in").map_values(lambda v: 1 // 0, name="boom").to("out")
    with pytest.raises(st.ProcessingError, match="step 'boom'"):
        TopologyTestDriver(t).pipe("in", {}, key="k")


# -- per-step policies (stream.on_error) and stateful steps --------------------------------------
def dlq(d, app):
    return [
        (m.key, m.value, dict(m.headers))
        for m in d.broker.fetch(TopicPartition(f"{app}-dlq", 0), 0)
    ]


def test_a_step_policy_overrides_the_topology_default():
    t = st.Topology("ps")  # default: fail
    (
        t.source("in")
        .map_values(lambda v: {"inv": 10 // v["n"]}, name="invert")
        .on_error("skip")
        .map_values(lambda v: {"inv": v["inv"], "sq": 100 // (v["inv"] - 2)}, name="square")
        .to("out")
    )
    d = TopologyTestDriver(t)
    d.pipe_many("in", [("a", {"n": 1}), ("b", {"n": 0}), ("c", {"n": 2})])  # b fails: skipped
    assert d.read_values("out") == [{"inv": 10, "sq": 12}, {"inv": 5, "sq": 33}]
    with pytest.raises(st.ProcessingError, match="step 'square'"):  # fused with 'invert',
        d.pipe("in", {"n": 5}, key="d")  # but still 'fail': 10 // 5 - 2 == 0


def test_aggregate_dead_letters_the_record_its_function_fails_on_and_keeps_exact_state():
    def add(acc, v):
        if v["amount"] < 0:
            raise ValueError("negative amount")
        return acc + v["amount"]

    t = st.Topology("pa")
    (
        t.source("in")
        .aggregate("total", st.agg.custom(init=lambda: 0, add=add, result=lambda a: a))
        .on_error("dead_letter")
        .to("out", value=st.serde.INT)
    )
    d = TopologyTestDriver(t)
    d.pipe_many("in", [("a", {"amount": 5}), ("a", {"amount": -1}), ("a", {"amount": 7})])
    assert d.store("total").get("a") == 12
    ((key, value, headers),) = dlq(d, "pa")
    assert (key, value) == (b"a", b'{"amount":-1}')  # as they came
    assert headers["streams.error.step"] == b"total"
    assert b"negative amount" in headers["streams.error.message"]
    assert headers["streams.source.offset"] == b"1"


def test_process_and_table_join_follow_the_topology_policy():
    def tag(ctx):
        if ctx.value.get("bad"):
            raise KeyError("bad record")
        ctx.forward(ctx.key, {**ctx.value, "tagged": True})

    t = st.Topology("pj", on_error="dead_letter")
    users = t.table("users")
    (
        t.source("in")
        .process("tag", tag)
        .join(users, lambda v, u: {**v, "tier": u["tier"].upper()}, name="enrich")
        .to("out")
    )
    d = TopologyTestDriver(t)
    d.pipe_many("users", [("u1", {"tier": "gold"}), ("u2", {"tier": None})])
    d.pipe_many("in", [("u1", {"i": 1}), ("u1", {"i": 2, "bad": 1}), ("u2", {"i": 3})])
    assert d.read_values("out") == [{"i": 1, "tagged": True, "tier": "GOLD"}]
    steps = [h["streams.error.step"] for _k, _v, h in dlq(d, "pj")]
    assert steps == [b"tag", b"enrich"]  # the process() failure, then the joiner's


def test_on_error_is_checked_when_the_topology_is_built():
    t = st.Topology("pv")
    src = t.source("in")
    with pytest.raises(st.TopologyError, match="source"):
        src.on_error("skip")
    with pytest.raises(st.TopologyError, match="'fail', 'skip' or 'dead_letter'"):
        src.map_values(lambda v: v, name="m").on_error("ignore")
    with pytest.raises(st.TopologyError, match="user functions"):
        src.merge(t.source("in2"), name="both").on_error("skip")
