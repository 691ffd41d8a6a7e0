"""The runtime's side of the sink contract: the order of calls, the context, the fence, abort."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

import streams as st
from streams.connectors import Sink, SinkBatch, SinkContext, SinkWriter
from streams.core.errors import TaskMigratedError, TopologyError
from streams.runtime import driver as driver_mod
from streams.runtime.embedded import EmbeddedBroker
from streams.testing import TopologyTestDriver

CALLS: list[tuple[Any, ...]] = []


class Recording(Sink):
    default_name = "rec"

    def open(self, ctx: SinkContext) -> SinkWriter:
        CALLS.append(("open", ctx.app_id, ctx.step, ctx.partition, ctx.guarantee, ctx.writer_id))
        return RecordingWriter(ctx)


class RecordingWriter(SinkWriter):
    def __init__(self, ctx: SinkContext) -> None:
        self.ctx = ctx

    def recover(self) -> Mapping[str, int]:
        CALLS.append(("recover", self.ctx.state.get("published", [])))
        return {}

    def write(self, batch: SinkBatch) -> None:
        CALLS.append(("write", [r.offset for r in batch.records], batch.input))

    def prepare(self, positions: Mapping[str, int]) -> None:
        CALLS.append(("prepare", dict(positions)))

    def publish(self) -> None:
        CALLS.append(("publish",))

    def abort(self) -> None:
        CALLS.append(("abort",))

    def close(self) -> None:
        CALLS.append(("close",))


@pytest.fixture(autouse=True)
def _clear() -> None:
    CALLS.clear()


def topology() -> st.Topology:
    t = st.Topology("rt")
    t.source("in").to_sink(Recording())
    return t


def test_calls_come_in_the_contract_order_with_the_task_context() -> None:
    d = TopologyTestDriver(topology(), auto_commit=False)
    d.pipe_many("in", [{"n": i} for i in range(3)])
    d.commit()
    d.close()
    names = [c[0] for c in CALLS]
    assert names == ["open", "recover", "write", "prepare", "publish", "close"]
    assert CALLS[0] == ("open", "rt", "rec", 0, "at_least_once", "rt-rec-0000")
    assert CALLS[2] == ("write", [0, 1, 2], "in:0")
    assert CALLS[3] == ("prepare", {"in:0": 3})


def test_re_read_records_below_the_last_prepare_never_reach_the_writer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    d = TopologyTestDriver(topology(), auto_commit=False)
    d.pipe_many("in", [{"n": i} for i in range(4)])

    async def refused(self: Any, offsets: Any, metadata: Any) -> None:
        raise TaskMigratedError("refused")

    # the state (with the positions prepared) reaches the changelog; the offsets do not
    monkeypatch.setattr(driver_mod._DriverIO, "commit_offsets", refused)
    with pytest.raises(TaskMigratedError):
        d.commit()
    monkeypatch.undo()
    assert [c[0] for c in CALLS][-2:] == ["prepare", "abort"]  # abort before the task goes
    CALLS.clear()
    d.crash()
    d.restart()  # re-reads offsets 0..3 (not committed): all below the recorded position
    d.pipe_many("in", [{"n": 9}])
    writes = [c for c in CALLS if c[0] == "write"]
    assert writes == [("write", [4], "in:0")]


def test_the_worker_tells_the_sink_its_guarantee(tmp_path: Any) -> None:
    b = EmbeddedBroker()
    b.create_topic("in", 2)
    for i in range(4):
        b.append("in", i % 2, None, st.serde.JSON.serialize({"n": i}), i)
    config = st.Config(processing_guarantee="exactly_once", state_dir=str(tmp_path))
    asyncio.run(st.Worker(topology(), b, config).run(until_idle=True))
    opened = sorted(c for c in CALLS if c[0] == "open")
    assert [c[3:5] for c in opened] == [(0, "exactly_once"), (1, "exactly_once")]
    assert sum(len(c[1]) for c in CALLS if c[0] == "write") == 4


def test_to_sink_takes_a_sink() -> None:
    with pytest.raises(TopologyError, match="Sink"):
        st.Topology("x").source("in").to_sink(lambda rows: None)  # type: ignore[arg-type]
