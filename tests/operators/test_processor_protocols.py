"""Processor capabilities are typed protocols: the task and the columnar push ask them."""

from __future__ import annotations

import streams as st
from operators.base import (
    ColumnarProcessor,
    Forward,
    TimedProcessor,
    WallClockProcessor,
    takes_columnar,
)
from operators.columnar import ColumnarChainProcessor
from operators.join import StreamStreamJoinProcessor
from operators.process import ProcessProcessor
from operators.sink import SinkProcessor
from operators.windowed import WindowedAggregateProcessor
from streams import windows
from streams.runtime.embedded import EmbeddedBroker
from streams.runtime.task import BrokerCollector, Task


def _tasks(t: st.Topology) -> list[Task]:
    p = t.compile()
    b = EmbeddedBroker(default_partitions=1)
    return [Task(p, sub, 0, BrokerCollector(b)) for sub in p.subtopologies]


def _timed_topology() -> st.Topology:
    t = st.Topology("timed")
    s = t.source("in", timestamp="ts")
    s.key_by("user").window("w", windows.tumbling(seconds=1)).count().to("counts")
    s.key_by("user").window("sl", windows.sliding(seconds=1)).count().to("sliding")
    s.window("se", windows.session(seconds=1)).count().to("sessions")

    def fn(ctx):
        ctx.schedule(ctx.timestamp + 1)

    def on_timer(ctx):
        ctx.forward(ctx.key, "t")

    s.process("p", fn, on_timer=on_timer).to("timers")
    other = t.source("other", timestamp="ts")
    s.join(other, lambda a, b: a, window=windows.join_window(1_000), name="j").to("joined")
    return t


def test_every_timed_processor_satisfies_timed_processor():
    kinds = set()
    for task in _tasks(_timed_topology()):
        for p in task.timed:
            if isinstance(p, SinkProcessor):  # (announces the watermark, keeps none)
                assert not isinstance(p, TimedProcessor)
                continue
            assert isinstance(p, TimedProcessor), p
            kinds.add(type(p))
    assert ProcessProcessor in kinds and StreamStreamJoinProcessor in kinds
    assert sum(issubclass(k, WindowedAggregateProcessor) for k in kinds) == 3
    wall = [p for task in _tasks(_timed_topology()) for p in task.timed]
    assert [type(p) for p in wall if isinstance(p, WallClockProcessor)] == [ProcessProcessor]


def test_resume_sets_the_watermark_of_every_timed_processor():
    tasks = [t for t in _tasks(_timed_topology()) if t.timed]
    for task in tasks:
        task._resume_from(5_000)
    timed = [p for t in tasks for p in t.timed if isinstance(p, TimedProcessor)]
    assert len(timed) == 5 and {p.watermark for p in timed} == {5_000}


def test_columnar_capability():
    assert not takes_columnar(Forward([]))
    assert not isinstance(Forward([]), ColumnarProcessor)
    t = st.Topology("c", execution="columnar")
    t.source("in").map_values(st.col("n") * 2).to("out")
    procs = [p for task in _tasks(t) for d in task.decoders.values() for p in d.children]
    assert procs and all(isinstance(p, ColumnarChainProcessor) for p in procs)
    assert all(isinstance(p, ColumnarProcessor) and takes_columnar(p) for p in procs)


def test_processor_context_is_public_and_what_process_functions_get():
    from operators.context import ProcessorContext
    from operators.process import StepContext

    assert st.ProcessorContext is ProcessorContext
    seen: list[object] = []

    def fn(ctx: st.ProcessorContext) -> None:
        seen.append(type(ctx))
        ctx.forward(ctx.key, {"p": ctx.partition, "n": len(ctx.store("s"))})

    t = st.Topology("ctx")
    t.source("in").process("p", fn, stores=["s"]).to("out")
    d = st.TopologyTestDriver(t)
    d.pipe("in", 1, key="a")
    assert seen == [StepContext] and d.read_values("out") == [{"p": 0, "n": 0}]
