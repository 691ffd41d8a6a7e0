"""Parquet sink: files appear only for committed records, exactly once across crashes."""

from __future__ import annotations

from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import streams as st
from operators.parquet_sink import ParquetSinkProcessor
from streams.core.errors import TopologyError
from streams.plan import nodes as plan
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
    monkeypatch.setattr(ParquetSinkProcessor, "post_commit", lambda self: None)
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
    node = plan.ParquetSink(step="s", parents=(), path=str(tmp_path), store=plan.StoreSpec("s"))
    committed: dict[str, object] = {}
    sink = ParquetSinkProcessor(node, committed, partition=0, clock=lambda: 0)
    sink.process([(None, {"x": 1}, 0, (), 0)])
    sink.pre_commit()
    sink.post_commit()
    durable = dict(committed)
    sink.process([(None, {"x": 2}, 0, (), 1)])
    sink.pre_commit()  # ... and the commit fails: the store falls back to the durable state
    restarted = ParquetSinkProcessor(node, durable, partition=0, clock=lambda: 0)
    restarted.recover()
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
