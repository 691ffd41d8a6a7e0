"""Parquet sink: files appear only for committed records, exactly once across crashes."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import streams as st
from operators.connectors.api import SinkBatch, SinkContext
from operators.connectors.parquet import ParquetSink, ParquetWriter
from operators.connectors.runtime import DictState
from streams.core.errors import BrokerError, TaskMigratedError, TopologyError
from streams.core.records import TopicPartition
from streams.runtime.embedded import EmbeddedBroker, EmbeddedConsumer, EmbeddedProducer
from streams.testing import TopologyTestDriver


def topology(path: Path, **kw: object) -> st.Topology:
    t = st.Topology("pq")
    t.source("tx").filter(lambda v: v["amount"] >= 0).to_parquet(path, **kw)  # type: ignore[arg-type]
    return t


def tx(n: int, start: int = 0) -> list[tuple[str, dict[str, object]]]:
    return [
        (f"c{i % 3}", {"i": i, "amount": i % 7 - 1, "country": ["DE", "FR", "NL"][i % 3]})
        for i in range(start, start + n)
    ]


def read(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    table = ds.dataset(path, format="parquet", partitioning="hive").to_table()
    return sorted(table.to_pylist(), key=lambda r: r["i"])  # type: ignore[arg-type,return-value]


def want(records: list[tuple[str, dict[str, object]]]) -> list[dict[str, object]]:
    return [v for _, v in records if v["amount"] >= 0]  # type: ignore[operator]


def test_files_appear_at_commit_with_exactly_the_committed_records(tmp_path: Path) -> None:
    out = tmp_path / "out"
    d = TopologyTestDriver(topology(out), auto_commit=False, partitions=2)
    first = tx(40)
    d.pipe_many("tx", first)
    assert read(out) == []  # processed, not committed: nothing visible
    d.commit()
    assert read(out) == want(first)
    second = tx(25, 40)
    d.pipe_many("tx", second)
    d.commit()
    assert read(out) == want(first + second)
    files = sorted(p.name for p in out.glob("*.parquet"))
    # one file per task (2) per commit (2)
    assert len(files) == 4 and all(f.startswith("parquet-out-000") for f in files)


def test_crash_before_commit_rewrites_nothing_twice(tmp_path: Path) -> None:
    out = tmp_path / "out"
    d = TopologyTestDriver(topology(out), auto_commit=False)
    a, b, c = tx(30), tx(30, 30), tx(30, 60)
    d.pipe_many("tx", a)
    d.commit()
    d.pipe_many("tx", b)  # processed; crash before the commit
    d.crash()
    d.restart()  # reprocesses b from the committed offsets
    d.pipe_many("tx", c)
    d.commit()
    assert read(out) == want(a + b + c)  # b once, not twice
    assert not list(out.rglob(".*.tmp")) and not list((out / "_staging").rglob("*.arrow"))


def test_crash_between_durable_commit_and_rename_publishes_on_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    d = TopologyTestDriver(topology(out), auto_commit=False)
    a = tx(30)
    d.pipe_many("tx", a)
    monkeypatch.setattr(ParquetWriter, "publish", lambda self: None)
    d.commit()  # offsets and sink state durable; the process "dies" before renaming
    assert read(out) == []
    assert len(list(out.glob(".*.parquet.tmp"))) == 1
    monkeypatch.undo()
    d.crash()
    d.restart()  # recover() publishes what the committed state lists; a is not reprocessed
    assert read(out) == want(a)
    d.pipe_many("tx", tx(5, 30))
    d.commit()
    assert read(out) == want(tx(35))


def test_uncommitted_files_of_a_failed_commit_are_discarded(tmp_path: Path) -> None:
    def open_writer(state: dict[str, object]) -> ParquetWriter:
        ctx = SinkContext("app", "s", 0, "exactly_once", DictState(state), lambda: 0)
        return ParquetSink(tmp_path).open(ctx)

    committed: dict[str, object] = {}
    sink = open_writer(committed)
    sink.recover()
    sink.write(SinkBatch([(None, {"x": 1}, 0, (), 0)]))
    sink.prepare({"in:0": 1})
    sink.publish()
    durable = dict(committed)
    sink.write(SinkBatch([(None, {"x": 2}, 0, (), 1)]))
    sink.prepare({"in:0": 2})  # ... and the commit fails: the store falls back to the durable state
    restarted = open_writer(durable)
    assert restarted.recover() == {}
    assert pq.read_table(tmp_path).to_pylist() == [{"x": 1}]
    assert not list(tmp_path.rglob(".*.tmp"))
    assert not list(tmp_path.rglob("*.arrow"))


def test_rotation_by_rows_stages_until_the_file_is_due(tmp_path: Path) -> None:
    out = tmp_path / "out"
    d = TopologyTestDriver(topology(out, rotate_rows=20), auto_commit=False)
    rows: list[tuple[str, dict[str, object]]] = []
    published, staged, files = 0, 0, 0
    for i in range(5):
        batch = tx(10, i * 10)
        rows += batch
        d.pipe_many("tx", batch)
        d.commit()
        staged += len(want(batch))
        if staged >= 20:  # the model: a file is cut once 20 rows are staged
            published, staged, files = published + staged, 0, files + 1
        assert read(out) == want(rows)[:published]
    assert 0 < published < len(want(rows))
    d.end_of_input()
    d.commit()  # end of input publishes the rest
    assert read(out) == want(rows)
    assert len(list(out.glob("*.parquet"))) == files + 1


def test_rotation_by_time(tmp_path: Path) -> None:
    out = tmp_path / "out"
    d = TopologyTestDriver(topology(out, rotate_every=60), auto_commit=False)
    d.pipe_many("tx", tx(10))
    d.commit()
    d.advance_time(30_000)
    d.commit()
    assert read(out) == []
    d.advance_time(31_000)
    d.commit()
    assert read(out) == want(tx(10))


def test_partition_by_writes_hive_directories(tmp_path: Path) -> None:
    out = tmp_path / "out"
    d = TopologyTestDriver(
        topology(out, partition_by=["country"], key_column="card", timestamp_column="ts")
    )
    recs = tx(30)
    d.pipe_many("tx", [(k, v, 1_000 + i) for i, (k, v) in enumerate(recs)])
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith("_")) == [
        "country=DE",
        "country=FR",
        "country=NL",
    ]
    got = read(out)
    assert [r["card"] for r in got] == [k for k, v in recs if v["amount"] >= 0]  # type: ignore[operator]
    assert [r["ts"] for r in got] == [
        1_000 + i
        for i, (_, v) in enumerate(recs)
        if v["amount"] >= 0  # type: ignore[operator]
    ]
    assert {r["country"] for r in got} == {"DE", "FR", "NL"}
    assert "country" not in pq.read_schema(next(out.glob("country=DE/*.parquet"))).names


def test_bad_arguments_are_rejected_at_build_time(tmp_path: Path) -> None:
    t = st.Topology("pq")
    with pytest.raises(TopologyError, match="positive"):
        t.source("tx").to_parquet(tmp_path, rotate_rows=0)
    with pytest.raises(TopologyError, match="step id"):
        t.source("tx2").to_parquet(tmp_path, name="Bad Name")


def test_describe_names_the_sink_and_its_store(tmp_path: Path) -> None:
    t = topology(tmp_path / "daily", partition_by=["country"])
    text = t.describe()
    assert "parquet-daily" in text and "partition_by=['country']" in text
    assert "pq-parquet-daily-changelog" in text


# -- a commit that fails between the changelog and the offsets ---------------------------------
def _load(b: EmbeddedBroker, n: int, partitions: int = 2) -> None:
    for i in range(n):
        value = {"i": i, "amount": i % 7 - 1, "country": ["DE", "FR", "NL"][i % 3]}
        b.append("tx", i % partitions, None, st.serde.JSON.serialize(value), i)


def _published_ids(path: Path) -> list[int]:
    return sorted(r["i"] for r in read(path))  # type: ignore[misc]


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_a_failed_commit_on_the_worker_publishes_every_row_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, guarantee: str
) -> None:
    """The issue's reproduction: the worker's commit fails after the changelog (with the
    sink's files to publish) is written and before the offsets are: at-least-once, the group
    refused the offsets (a rebalance); exactly-once, the transaction failed. The tasks restart
    from their last commit and re-read the records of the failed commit."""
    out = tmp_path / "out"
    b = EmbeddedBroker(default_partitions=2)
    b.create_topic("tx", 2)
    _load(b, 600)
    failures: list[dict[TopicPartition, int]] = []
    if guarantee == "at_least_once":
        real_commit = EmbeddedConsumer.commit

        async def refuse(self: Any, offsets: Any, metadata: Any = None) -> None:
            if offsets and len(failures) < 3:  # (the first three, whatever the timing)
                failures.append(dict(offsets))
                raise TaskMigratedError("kafka: offset commit refused: CommitFailedError")
            await real_commit(self, offsets, metadata)

        monkeypatch.setattr(EmbeddedConsumer, "commit", refuse)
    else:
        real_txn = EmbeddedProducer.commit_transaction

        async def fail(self: Any, offsets: Any, group_id: Any, metadata: Any = None) -> None:
            if offsets and len(failures) < 3:
                failures.append(dict(offsets))
                await self.abort()
                raise BrokerError("kafka: commit transaction failed: KafkaConnectionError")
            await real_txn(self, offsets, group_id, metadata)

        monkeypatch.setattr(EmbeddedProducer, "commit_transaction", fail)
    config = st.Config(
        processing_guarantee=guarantee,  # type: ignore[arg-type]
        state_dir=str(tmp_path / "state"),
        max_poll_records=50,
        commit_interval_ms=1,
    )
    w = st.Worker(topology(out), b, config)
    asyncio.run(w.run(until_idle=True))
    assert len(failures) == 3 and w.rebalances >= 3
    assert _published_ids(out) == [v["i"] for v in want(tx(600))]  # each row once


class _Crash(Exception):
    """The process dies here."""


def _crash_in(monkeypatch: pytest.MonkeyPatch, point: str) -> None:
    """Make the driver's next commit die at ``point`` of the commit sequence."""
    from streams.runtime import driver as driver_mod

    def die(*_a: object, **_k: object) -> None:
        raise _Crash(point)

    async def adie(*_a: object, **_k: object) -> None:
        raise _Crash(point)

    if point == "after-pre-commit":  # files written and listed, changelog not yet sent
        real = ParquetWriter.prepare

        def pre_then_die(self: ParquetWriter, *a: Any) -> None:
            real(self, *a)
            raise _Crash(point)

        monkeypatch.setattr(ParquetWriter, "prepare", pre_then_die)
    elif point == "after-changelog":  # changelog durable, offsets not committed
        monkeypatch.setattr(driver_mod._DriverIO, "commit_offsets", adie)
    elif point == "after-offsets":  # offsets committed, stores and files not finished
        monkeypatch.setattr(ParquetWriter, "publish", die)
    elif point == "mid-publish":  # some files renamed, then death
        real_replace = os.replace
        calls = []

        def replace_once(src: Any, dst: Any) -> None:
            if str(dst).endswith(".parquet"):
                calls.append(dst)
                if len(calls) == 2:
                    raise _Crash(point)
            real_replace(src, dst)

        monkeypatch.setattr("operators.connectors.parquet.os.replace", replace_once)
    else:
        raise AssertionError(point)


CRASH_POINTS = ["after-pre-commit", "after-changelog", "after-offsets", "mid-publish"]


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_crash_at_any_point_of_the_commit_publishes_every_row_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    out = tmp_path / "out"
    d = TopologyTestDriver(topology(out, partition_by=["country"]), auto_commit=False, partitions=2)
    a, b, c = tx(40), tx(40, 40), tx(40, 80)
    d.pipe_many("tx", a)
    d.commit()
    d.pipe_many("tx", b)
    _crash_in(monkeypatch, point)
    with pytest.raises(_Crash):
        d.commit()
    monkeypatch.undo()
    d.crash()
    d.restart()  # re-reads what the offsets do not cover
    d.commit()
    d.pipe_many("tx", c)
    d.commit()
    assert _published_ids(out) == [v["i"] for v in want(a + b + c)]  # each row once
    assert not list(out.rglob(".*.tmp"))


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_two_crashes_in_a_row_still_publish_every_row_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    """The commit after the re-read, with new records, dies at the same point again."""
    out = tmp_path / "out"
    d = TopologyTestDriver(topology(out, partition_by=["country"]), auto_commit=False)
    a, b1, b2, c = tx(30), tx(30, 30), tx(30, 60), tx(30, 90)
    d.pipe_many("tx", a)
    d.commit()
    for b in (b1, b2):
        d.pipe_many("tx", b)
        _crash_in(monkeypatch, point)
        with pytest.raises(_Crash):
            d.commit()
        monkeypatch.undo()
        d.crash()
        d.restart()  # re-reads what the offsets do not cover
    d.pipe_many("tx", c)
    d.commit()
    assert _published_ids(out) == [v["i"] for v in want(a + b1 + b2 + c)]
    assert not list(out.rglob(".*.tmp"))


def test_each_file_says_which_input_offsets_it_covers(tmp_path: Path) -> None:
    out = tmp_path / "out"
    d = TopologyTestDriver(topology(out), auto_commit=False)
    for start in (0, 20, 50):
        d.pipe_many("tx", tx(20 if start < 50 else 10, start))
        d.commit()
    covers = [
        json.loads(pq.read_schema(f).metadata[b"streams.input"])
        for f in sorted(out.glob("*.parquet"))
    ]
    assert covers == [{"tx:0": [0, 19]}, {"tx:0": [20, 39]}, {"tx:0": [40, 49]}]


def test_a_merge_of_two_topics_publishes_each_row_once_after_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offsets of two merged topics overlap: the fence is per input partition (the task tells
    the sink which one a batch comes from), so re-read rows of either topic are skipped."""
    out = tmp_path / "out"
    t = st.Topology("pq")
    t.source("tx").merge(t.source("tx2")).to_parquet(out)
    d = TopologyTestDriver(t, auto_commit=False)
    d.pipe_many("tx", tx(20))
    d.pipe_many("tx2", tx(5, 100))  # (fences differ: 20 on tx, 5 on tx2)
    _crash_in(monkeypatch, "after-changelog")
    with pytest.raises(_Crash):
        d.commit()
    monkeypatch.undo()
    d.crash()
    d.restart()
    d.pipe_many("tx", tx(10, 20))
    d.commit()
    ids = _published_ids(out)
    assert sorted(ids) == [*range(30), *range(100, 105)]
