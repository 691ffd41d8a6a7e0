"""The progress reporter: its line, where it goes, and the metrics it feeds."""

import io

from streams.runtime.metrics import WorkerMetrics
from streams.runtime.progress import Progress, format_duration


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_rate_part_and_eta_from_the_input_size():
    clock = Clock()
    p = Progress("tx", total=4_000_000, clock=clock)  # (bytes)
    clock.t += 10
    p.add(50_000, done=1_000_000)
    assert p.rate == 5_000 and p.ratio == 0.25 and p.eta_s == 30
    assert p.line() == "tx: 50,000 records | 5,000 rec/s | 25% | ETA 30 s"
    clock.t += 30
    p.add(150_000, done=4_000_000)
    assert p.line(final=True) == "tx: 200,000 records in 40.0 s (5,000 rec/s)"


def test_without_a_size_there_is_no_eta():
    clock = Clock()
    p = Progress("it", clock=clock)
    clock.t += 2
    p.add(10)
    assert p.ratio is None and p.eta_s is None
    assert p.line() == "it: 10 records | 5 rec/s"


def test_lines_go_out_once_per_interval_in_place_on_a_terminal():
    clock, out = Clock(), Terminal()
    p = Progress("in", total=100, out=out, every_s=1.0, clock=clock)
    for _ in range(4):  # 0.5 s apart: a line every other batch
        clock.t += 0.5
        p.add(25)
    p.close()
    text = out.getvalue()
    # the last line covers the longer one before it, and ends the line
    assert text.count("\r") == 3 and text.endswith("(50 rec/s)        \n")
    assert "\rin: 50 records | 50 rec/s | 50% | ETA 1 s" in text


def test_lines_are_whole_lines_elsewhere():
    clock, out = Clock(), io.StringIO()
    p = Progress("in", total=10, out=out, every_s=0, clock=clock)
    clock.t += 1
    p.add(5)
    p.close()
    assert out.getvalue().splitlines() == [
        "in: 5 records | 5 rec/s | 50% | ETA 1 s",
        "in: 5 records in 1.0 s (5 rec/s)",
    ]


def test_progress_feeds_the_worker_metrics():
    clock, m = Clock(), WorkerMetrics(frozenset())
    p = Progress("tx", total=1000, sink=m, every_s=0, clock=clock)
    clock.t += 4
    p.add(300, done=200)
    labels = {"topic": "tx"}
    assert m.sample("streams_input_records_total", labels) == 300
    assert m.sample("streams_input_progress_ratio", labels) == 0.2
    assert m.sample("streams_input_eta_seconds", labels) == 16
    p.close()
    assert m.sample("streams_input_progress_ratio", labels) == 1.0
    assert m.sample("streams_input_eta_seconds", labels) == 0


def test_durations():
    assert [format_duration(s) for s in (0, 59.4, 60, 125, 7300)] == [
        "0 s",
        "59 s",
        "1 min",
        "2 min 05 s",
        "2 h 01 min",
    ]
