"""Async steps (map_async, filter_async, flat_map_async) through the test driver: order,
concurrency, timeouts and retries, error policies, event time, build-time checks."""

import asyncio
import functools

import pytest

import streams as st
from streams import windows
from streams.core.errors import ProcessingError, TopologyError


class Probe:
    """An async function that sleeps ``delay(v)`` seconds and counts calls in flight."""

    def __init__(self, delay=lambda v: 0.005, result=lambda v: v * 10):
        self.delay, self.result = delay, result
        self.in_flight = self.peak = self.calls = 0

    async def __call__(self, v):
        self.calls += 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self.delay(v))
            return self.result(v)
        finally:
            self.in_flight -= 1


def run(build, values, **driver):
    t = st.Topology("as")
    build(t.source("in")).to("out")
    with st.TopologyTestDriver(t, **driver) as d:
        d.pipe_many("in", values)
        return d.read_values("out"), d.dropped, d


def test_ordered_results_leave_in_input_order_whatever_finishes_first():
    probe = Probe(delay=lambda v: 0.002 * (20 - v))  # later records finish first
    out, _, _ = run(lambda s: s.map_async(probe, concurrency=50), list(range(20)))
    assert out == [v * 10 for v in range(20)]
    assert probe.peak == 20  # all in flight at once, none waited for another


def test_unordered_results_leave_as_they_complete():
    probe = Probe(delay=lambda v: 0.01 * (5 - v))
    out, _, _ = run(lambda s: s.map_async(probe, ordered=False), list(range(5)))
    assert out == [40, 30, 20, 10, 0]


@pytest.mark.parametrize("ordered", [True, False])
def test_calls_in_flight_never_exceed_the_concurrency(ordered):
    probe = Probe(delay=lambda v: 0.001 * (v % 5))
    out, _, _ = run(lambda s: s.map_async(probe, concurrency=7, ordered=ordered), list(range(60)))
    assert sorted(out) == [v * 10 for v in range(60)]
    assert probe.peak == 7


def test_an_ordered_step_counts_results_waiting_behind_a_slow_record():
    # record 0 is slow: the others finish but wait behind it; with a capacity of 4, no more
    # than 4 records are started-and-not-emitted, so record 4 starts only after 0 leaves
    started = []

    async def fn(v):
        started.append(v)
        await asyncio.sleep(0.05 if v == 0 else 0.001)
        return v

    out, _, _ = run(lambda s: s.map_async(fn, concurrency=4), list(range(8)))
    assert out == list(range(8))
    assert started[:4] == [0, 1, 2, 3]


def test_filter_async_and_flat_map_async():
    async def odd(v):
        await asyncio.sleep(0)
        return v % 2 == 1

    async def twice(v):
        return [v, v]

    out, _, _ = run(lambda s: s.filter_async(odd).flat_map_async(twice), list(range(6)))
    assert out == [1, 1, 3, 3, 5, 5]


def test_keys_timestamps_and_chained_async_steps():
    async def inc(v):
        await asyncio.sleep(0.001)
        return v + 1

    t = st.Topology("as")
    t.source("in").map_async(inc).map_async(inc, ordered=False).to("out")
    with st.TopologyTestDriver(t) as d:
        d.pipe("in", 1, key="a", timestamp=123)
        (r,) = d.read("out")
    assert (r.key, r.value, r.timestamp) == ("a", 3, 123)


def test_timeouts_are_retried_with_backoff_then_succeed():
    attempts = {}

    async def flaky(v):
        attempts[v] = attempts.get(v, 0) + 1
        if attempts[v] <= 2:
            await asyncio.sleep(10)  # hangs: the timeout ends it
        return v

    out, dropped, _ = run(
        lambda s: s.map_async(flaky, timeout=0.02, retries=2, backoff=0.001), [1, 2, 3]
    )
    assert out == [1, 2, 3] and dropped == {}
    assert attempts == {1: 3, 2: 3, 3: 3}


def _failing(fails: int):
    attempts = {}

    async def fn(v):
        attempts[v] = attempts.get(v, 0) + 1
        if v == 2 and attempts[v] <= fails:
            raise ConnectionError("service down")
        return v

    return fn, attempts


def test_retries_exhausted_skip_counts_a_drop():
    fn, attempts = _failing(fails=99)
    out, dropped, _ = run(
        lambda s: s.map_async(fn, retries=2, backoff=0.001, name="svc").on_error("skip"),
        [1, 2, 3],
    )
    assert out == [1, 3]
    assert dropped == {("svc", "error_skipped"): 1}
    assert attempts[2] == 3  # the first call and two retries


def test_retries_exhausted_dead_letter_sends_the_original_record():
    fn, _ = _failing(fails=99)
    t = st.Topology("dl")
    t.source("in").map_values(lambda v: v).map_async(fn, retries=1, backoff=0.001).on_error(
        "dead_letter"
    ).to("out")
    with st.TopologyTestDriver(t) as d:
        d.pipe_many("in", [("k1", 1), ("k2", 2), ("k3", 3)])
        assert d.read_values("out") == [1, 3]
        (dead,) = d.read("dl-dlq")
    assert dead.value == b"2" and dead.key is not None
    assert b"ConnectionError: service down" in dict(dead.headers)["streams.error.message"]


def test_retries_exhausted_fail_stops_with_the_step_and_offset():
    fn, _ = _failing(fails=99)
    t = st.Topology("fl")
    t.source("in").map_async(fn, retries=1, backoff=0.001, name="svc").to("out")
    with st.TopologyTestDriver(t) as d, pytest.raises(ProcessingError) as e:
        d.pipe_many("in", [1, 2, 3])
    assert e.value.step == "svc" and e.value.offset == 1
    assert "ConnectionError: service down" in str(e.value)


def test_a_retry_that_succeeds_is_not_an_error():
    fn, attempts = _failing(fails=1)
    out, dropped, _ = run(lambda s: s.map_async(fn, retries=1, backoff=0.001), [1, 2, 3])
    assert out == [1, 2, 3] and dropped == {} and attempts[2] == 2


def test_a_function_that_returns_no_awaitable_goes_to_the_policy():
    out, dropped, _ = run(
        lambda s: s.map_async(lambda v: v, retries=3, name="oops").on_error("skip"), [1]
    )
    assert out == [] and dropped == {("oops", "error_skipped"): 1}


def test_records_in_flight_are_not_late_for_a_window_after_the_step():
    # One batch over three windows: without holding the watermark for the records in flight,
    # it would pass them at the end of the batch and the window would drop them as late.
    async def slow(v):
        await asyncio.sleep(0.001 * (10 - v["i"]))
        return v

    t = st.Topology("wm")
    (
        t.source("in", timestamp="ts")
        .map_async(slow, ordered=False)
        .key_by(st.lit("all"))
        .window("per-10s", windows.tumbling(seconds=10))
        .count()
        .to("out")
    )
    with st.TopologyTestDriver(t) as d:
        d.pipe_many("in", [{"i": i, "ts": i * 3_000} for i in range(10)])
        d.end_of_input()
        assert d.dropped == {}
        assert [w["n"] for w in d.read_values("out")] == [4, 3, 3]


def test_describe_shows_the_step_and_its_settings():
    async def score(v):
        return v

    t = st.Topology("ds")
    t.source("in").map_async(score, concurrency=8, ordered=False, timeout=0.5, retries=2).to("o")
    assert (
        "map_async map-async-1 (test_describe_shows_the_step_and_its_settings.<locals>.score, "
        "concurrency=8, unordered, timeout=500 ms, retries=2 (backoff 100 ms))"
    ) in t.describe()


async def _coro(v):
    return v


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda s: s.map_async(len), "must accept|not async"),
        (lambda s: s.map_async(lambda v: v, concurrency=0), "concurrency must be an int >= 1"),
        (lambda s: s.map_async(_coro, retries=-1), "retries must be an int >= 0"),
        (lambda s: s.map_async(_coro, timeout=0), "timeout is in seconds, > 0"),
        (lambda s: s.filter_async(42), "needs an async function, got int"),
        (lambda s: s.map_async(lambda a, b: a), "must accept 1 argument"),
    ],
)
def test_bad_settings_are_refused_naming_the_step(build, match):
    with pytest.raises(TopologyError, match=match):
        build(st.Topology("bad").source("in"))


def test_a_plain_function_is_refused_with_where_it_goes():
    def lookup(v):
        return v

    with pytest.raises(TopologyError, match="step 'map-async-1': function .*lookup is not async"):
        st.Topology("bad").source("in").map_async(lookup)
    # a partial of an async function and async callable objects are fine
    st.Topology("ok").source("in").map_async(functools.partial(_coro)).map_async(Probe())


async def test_the_driver_works_inside_a_running_event_loop():
    # (a notebook or an async test: the calls run on the driver's own loop thread)
    probe = Probe()
    out, _, _ = run(lambda s: s.map_async(probe), [1, 2])
    assert out == [10, 20]
