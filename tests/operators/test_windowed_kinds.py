"""One windowed operator per window kind, and the label that says how each runs agrees with
what the operator does."""

from __future__ import annotations

import pytest

import streams as st
from operators import aggregate, windowed
from operators.aggregate import AggregateProcessor
from operators.windowed import (
    SessionWindowsProcessor,
    SlidingWindowsProcessor,
    TumblingWindowsProcessor,
    WindowedAggregateProcessor,
)
from streams import agg, windows
from streams.runtime.embedded import EmbeddedBroker
from streams.runtime.task import BrokerCollector, Task

SHAPES = {
    "tumble": (windows.tumbling(ms=1_000), "final", {"n": agg.count()}),
    "hop": (
        windows.hopping(ms=10_000, advance=2_000),
        "final",
        {"n": agg.count(), "m": agg.max("a")},
    ),
    "upd": (windows.tumbling(ms=1_000), "update", {"n": agg.count()}),
    "tops": (windows.tumbling(ms=1_000), "final", {"t": agg.argmax("a", keep=("a",))}),
    "lasts": (windows.tumbling(ms=1_000), "final", {"l": agg.last("a")}),
    "sess": (windows.session(ms=1_000), "final", {"n": agg.count()}),
    "slide": (windows.sliding(ms=1_000), "update", {"n": agg.count()}),
}
KIND = {
    "tumble": TumblingWindowsProcessor,
    "hop": TumblingWindowsProcessor,
    "upd": TumblingWindowsProcessor,
    "tops": TumblingWindowsProcessor,
    "lasts": TumblingWindowsProcessor,
    "sess": SessionWindowsProcessor,
    "slide": SlidingWindowsProcessor,
}


def _topology(execution: str) -> st.Topology:
    t = st.Topology("kinds", execution=execution)  # type: ignore[arg-type]
    by_user = t.source("in", timestamp="ts").key_by("user")
    for step, (spec, emit, aggs) in SHAPES.items():
        by_user.window(step, spec, emit=emit).aggregate(**aggs).to(f"out-{step}")
    by_user.aggregate("total", agg.sum("a")).to("totals")
    by_user.aggregate("last", agg.last("a")).to("lasts")
    return t


def _processors(t: st.Topology) -> dict[str, object]:
    p = t.compile()
    b = EmbeddedBroker(default_partitions=1)
    out = {}
    for sub in p.subtopologies:
        task = Task(p, sub, 0, BrokerCollector(b))
        for proc in task.timed:
            if isinstance(proc, WindowedAggregateProcessor):
                out[proc.step] = proc
        for proc in _all(task):
            if isinstance(proc, AggregateProcessor):
                out[proc.step] = proc
    return out


def _all(task: Task) -> list[object]:
    seen, todo = [], [c for d in task.decoders.values() for c in d.children]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.append(p)
        for attr in ("children", "results"):
            todo.extend(getattr(p, attr, []))
    return seen


@pytest.mark.parametrize("execution", ["auto", "row", "columnar"])
def test_each_window_kind_has_its_operator_and_label(execution):
    t = _topology(execution)
    procs = _processors(t)
    for step, cls in KIND.items():
        p = procs[step]
        assert type(p) is cls, step
        label = windowed.execution_label(t.node(step), execution)  # type: ignore[arg-type]
        assert (label != "row") == p.accepts_columnar, (step, label)
        on_arrow = getattr(p, "_arrow", None) is not None
        assert (label == "columnar + windows on Arrow") == on_arrow, (step, label)
    for step in ("total", "last"):
        label = aggregate.execution_label(t.node(step), execution)  # type: ignore[arg-type]
        assert (label == "columnar") == (procs[step]._batch is not None), (step, label)


def test_labels_of_the_shapes():
    t = _topology("columnar")
    got = {s: windowed.execution_label(t.node(s), "columnar") for s in SHAPES}  # type: ignore[arg-type]
    assert got == {
        "tumble": "columnar + windows on Arrow",
        "hop": "columnar + windows on Arrow",
        "upd": "columnar",
        "tops": "columnar",
        "lasts": "row",
        "sess": "columnar",  # (a batch's own sessions on Arrow, then the store's)
        "slide": "row",
    }
    assert aggregate.execution_label(t.node("total"), "columnar") == "columnar"  # type: ignore[arg-type]
    assert aggregate.execution_label(t.node("last"), "columnar") == "row"  # type: ignore[arg-type]


def test_a_window_kind_needs_its_store():
    t = _topology("row")
    node = t.node("tumble")
    with pytest.raises(ValueError, match="ObjectWindows"):
        WindowedAggregateProcessor(node, None, [], [])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="SessionStore"):
        WindowedAggregateProcessor(t.node("sess"), None, [], [])  # type: ignore[arg-type]
