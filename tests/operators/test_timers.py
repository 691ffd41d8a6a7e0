"""Timers in process(): event-time timers fire on watermark advance, wall-clock ones on time."""

import pytest

import streams as st
from streams.testing import TopologyTestDriver


def topology(wall=False):
    def on_record(ctx):
        if wall:
            ctx.schedule(1_000, wall_clock=True)
        else:
            ctx.schedule(ctx.timestamp + 100)
            if ctx.value.get("cancel"):
                ctx.cancel(ctx.value["cancel"])
        ctx.forward(ctx.key, f"seen@{ctx.timestamp}")

    def on_timer(ctx):
        ctx.forward(ctx.key, f"{ctx.timer}-timer@{ctx.timestamp}")

    t = st.Topology("timers")
    (
        t.source("in", timestamp="ts")
        .process("p", on_record, on_timer=on_timer)
        .to("out", value=st.serde.STR)
    )
    return t


def test_event_time_timers_fire_in_order_when_the_watermark_reaches_them():
    d = TopologyTestDriver(topology())
    d.pipe("in", {"ts": 0}, key="a")
    d.pipe("in", {"ts": 50}, key="b")
    assert d.read_values("out") == ["seen@0", "seen@50"]
    d.pipe("in", {"ts": 160}, key="a")  # watermark 160: timers at 100 (a) and 150 (b) fire
    assert d.read_key_values("out") == [
        ("a", "seen@160"),
        ("a", "event-timer@100"),
        ("b", "event-timer@150"),
    ]


def test_cancelled_timer_does_not_fire():
    d = TopologyTestDriver(topology())
    d.pipe("in", {"ts": 0}, key="a")
    d.pipe("in", {"ts": 10, "cancel": 100}, key="a")  # cancels a@100, sets a@110
    d.pipe("in", {"ts": 500}, key="z")
    assert [v for v in d.read_values("out") if "timer" in v] == ["event-timer@110"]


def test_wall_clock_timers_fire_without_records():
    d = TopologyTestDriver(topology(wall=True))
    d.pipe("in", {"ts": 0}, key="a")
    d.advance_time(999)
    assert d.read_values("out") == ["seen@0"]
    d.advance_time(1)
    assert d.read_values("out") == ["wall-timer@1000"]


def test_timers_survive_a_crash():
    d = TopologyTestDriver(topology())
    d.pipe("in", {"ts": 0}, key="a")
    d.crash()
    d.restart()  # the timer store is restored from its changelog
    d.pipe("in", {"ts": 200}, key="b")
    assert "event-timer@100" in d.read_values("out")


def test_schedule_without_on_timer_is_an_error():
    t = st.Topology("nt")
    t.source("in").process("p", lambda ctx: ctx.schedule(5)).to("out")
    d = TopologyTestDriver(t)
    with pytest.raises(st.StreamsError, match="schedule\\(\\) needs"):
        d.pipe("in", {}, key="k")
