"""Processing-time tumbling/hopping windows (``time="processing"``) on the test driver's wall
clock: records land in the windows of the clock when they are processed, windows close as the
clock advances (no record needed), open windows survive a restart through the changelog."""

from __future__ import annotations

import pytest

import streams as st
from operators.windowed import ProcessingTimeWindowsProcessor, processor_class
from operators.windowed_base import execution_label
from streams import agg, windows
from streams.core.errors import TopologyError
from streams.plan import nodes as plan


def _topology(
    spec: windows.WindowSpec, execution: str = "auto", emit: str = "final"
) -> st.Topology:
    t = st.Topology("proc", execution=execution)  # type: ignore[arg-type]
    # (keyed at the source: no repartition topic, whose at-least-once copies would add up)
    w = t.source("in", timestamp="ts").window("w", spec, emit=emit)  # type: ignore[arg-type]
    w.aggregate(n=agg.count(), total=agg.sum("a")).to("out")
    return t


def _rows(d: st.TopologyTestDriver) -> list[tuple[str, int, int, int, int]]:
    return sorted(
        (r.key, r.value["window_start"], r.value["window_end"], r.value["n"], r.value["total"])
        for r in d.read("out")
    )


TEN_S = windows.tumbling(seconds=10, time="processing")


@pytest.mark.parametrize("execution", ["row", "auto", "columnar"])
def test_records_land_in_the_window_of_the_wall_clock_not_their_timestamp(execution):
    d = st.TopologyTestDriver(_topology(TEN_S, execution), start_time_ms=1_000)
    # event times all in one 10 s window; the wall clock puts them in three
    d.pipe("in", {"user": "u", "a": 1, "ts": 5}, key="u")
    d.pipe("in", {"user": "v", "a": 2, "ts": 6}, key="v")
    d.advance_time(10_000)  # 11 s: [0, 10 s) closes
    assert _rows(d) == [("u", 0, 10_000, 1, 1), ("v", 0, 10_000, 1, 2)]
    d.pipe_many("in", [("u", {"user": "u", "a": 3, "ts": 7}, 7)] * 2)
    d.advance_time(15_000)  # 26 s
    assert _rows(d) == [("u", 10_000, 20_000, 2, 6)]
    d.pipe("in", {"user": "u", "a": 4, "ts": 8}, key="u")
    assert _rows(d) == []  # [20 s, 30 s) is open at 26 s
    d.advance_time(3_999)
    assert _rows(d) == []
    d.advance_time(1)  # 30 s: closes with no new record
    assert _rows(d) == [("u", 20_000, 30_000, 1, 4)]


def test_event_time_closes_nothing_until_the_end_of_input():
    d = st.TopologyTestDriver(_topology(TEN_S))
    d.pipe("in", {"user": "u", "a": 1, "ts": 0}, key="u")
    d.pipe("in", {"user": "u", "a": 1, "ts": 10**12}, key="u")  # the watermark jumps far ahead
    assert _rows(d) == []
    d.end_of_input()  # a bounded input's end: every window closes, the result is complete
    assert _rows(d) == [("u", 0, 10_000, 2, 2)]


def test_hopping_on_processing_time():
    spec = windows.hopping(seconds=10, advance=5_000, time="processing")
    d = st.TopologyTestDriver(_topology(spec), start_time_ms=7_000)
    d.pipe("in", {"user": "u", "a": 1, "ts": 0}, key="u")  # in [0, 10 s) and [5 s, 15 s)
    d.advance_time(3_000)
    assert _rows(d) == [("u", 0, 10_000, 1, 1)]
    d.advance_time(5_000)
    assert _rows(d) == [("u", 5_000, 15_000, 1, 1)]


def test_emit_update_emits_each_change():
    d = st.TopologyTestDriver(_topology(TEN_S, emit="update"), start_time_ms=2_000)
    d.pipe("in", {"user": "u", "a": 1, "ts": 0}, key="u")
    d.pipe("in", {"user": "u", "a": 2, "ts": 0}, key="u")
    assert _rows(d) == [("u", 0, 10_000, 1, 1), ("u", 0, 10_000, 2, 3)]


def test_open_windows_survive_a_restart_and_close_on_the_clock():
    """The window store's changelog restores the open windows (as for event time); the first
    wall-clock tick after the restart closes those whose end has passed."""
    d = st.TopologyTestDriver(_topology(TEN_S), partitions=2, start_time_ms=1_000)
    for user in ("a", "b", "c"):
        d.pipe("in", {"user": user, "a": 1, "ts": 0}, key=user)
    d.advance_time(5_000)  # (nothing closes)
    d.pipe("in", {"user": "a", "a": 1, "ts": 0}, key="a")
    assert _rows(d) == []
    d.crash()
    d.restart()
    assert d.restored_records > 0
    d.pipe("in", {"user": "b", "a": 5, "ts": 0}, key="b")  # after the restart, same window
    d.advance_time(4_000)  # 10 s
    assert _rows(d) == [("a", 0, 10_000, 2, 2), ("b", 0, 10_000, 2, 6), ("c", 0, 10_000, 1, 1)]


def test_uncommitted_records_are_processed_again_at_the_clock_after_restart():
    d = st.TopologyTestDriver(_topology(TEN_S), auto_commit=False, start_time_ms=1_000)
    d.pipe("in", {"user": "u", "a": 1, "ts": 0}, key="u")
    d.commit()
    d.pipe("in", {"user": "u", "a": 2, "ts": 0}, key="u")  # not committed
    d.crash()
    d.wall_clock_ms += 20_000  # the process is down for 20 s
    d.restart()  # the second record runs again, now at 21 s; [0, 10 s) closes
    assert _rows(d) == [("u", 0, 10_000, 1, 1)]
    d.advance_time(10_000)
    assert _rows(d) == [("u", 20_000, 30_000, 1, 2)]


def test_the_operator_and_its_execution():
    node = plan.WindowedAggregate(
        step="w",
        parents=("p",),
        window=TEN_S,
        aggs=(("n", agg.count()),),
        single=False,
        emit="final",
        store=plan.StoreSpec("w", kind="window"),
    )
    assert processor_class(TEN_S) is ProcessingTimeWindowsProcessor
    # columnar topologies run this window kind record by record (the clock, not a column)
    assert execution_label(node, "columnar") == "row"
    assert "processing time" in _topology(TEN_S, "columnar").describe()


def test_the_time_domain_is_checked():
    with pytest.raises(TopologyError, match="time must be"):
        windows.tumbling(seconds=1, time="ingestion")  # type: ignore[arg-type]
    assert windows.tumbling(seconds=1) == windows.tumbling(seconds=1, time="event")
