"""File sources (JSON lines, CSV, Parquet): through the driver, bounded and followed, resumed
after a restart in the middle of a file and of a directory."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import streams as st
from streams.connectors import CsvSource, JsonLinesSource, ParquetSource
from streams.core.errors import SerializationError, StreamsError, TopologyError
from streams.runtime.embedded import EmbeddedBroker
from streams.testing import TopologyTestDriver


def write_jsonl(path: Path, start: int, n: int) -> None:
    tmp = path.with_name("." + path.name + ".tmp")  # (visible only when complete)
    tmp.write_text(
        "".join(json.dumps({"i": i, "amount": i % 5}) + "\n" for i in range(start, start + n))
    )
    os.replace(tmp, path)


def write_csv(path: Path, start: int, n: int) -> None:
    path.write_text("i,amount\n" + "".join(f"{i},{i % 5}\n" for i in range(start, start + n)))


def write_parquet(path: Path, start: int, n: int, row_group: int = 7) -> None:
    t = pa.table(
        {"i": list(range(start, start + n)), "amount": [i % 5 for i in range(start, start + n)]}
    )
    pq.write_table(t, path, row_group_size=row_group)


WRITERS = {
    "jsonl": (JsonLinesSource, write_jsonl),
    "csv": (CsvSource, write_csv),
    "parquet": (ParquetSource, write_parquet),
}


def topology(source: Any) -> st.Topology:
    t = st.Topology("files")
    t.source_from(source, name="files").filter(st.col("amount") > 0).to("out")
    return t


def ids(d: TopologyTestDriver) -> list[int]:
    return [v["i"] for v in d.read_values("out")]


def want(*ranges: range) -> list[int]:
    return [i for r in ranges for i in r if i % 5 > 0]


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_a_directory_is_read_in_name_order_and_resumed_mid_file_after_a_crash(
    tmp_path: Path, fmt: str
) -> None:
    cls, write = WRITERS[fmt]
    src = tmp_path / "in"
    src.mkdir()
    write(src / f"a.{fmt}", 0, 30)
    write(src / f"b.{fmt}", 30, 30)
    write(src / f"c.{fmt}", 60, 30)
    d = TopologyTestDriver(topology(cls(src)), auto_commit=False)
    got: list[int] = []
    # 4 batches of 10: a, then the first 10 records of b; the commit after the 3rd covers a
    feed = d.feeds[0]
    for k in range(4):
        batch = feed.poll(10)
        assert batch is not None
        feed.run(batch)
        d._pump()
        if k == 2:
            d.commit()  # committed: records 0..29 (all of a)
    got += ids(d)
    assert got == want(range(40))
    d.crash()  # batch 4 (records 30..39) processed, not committed
    d.restart()
    assert ids(d) == []
    d.poll_sources(batch_size=10)
    d.commit()
    # at-least-once: 30..39 again (their outputs were not committed), then the rest once
    assert ids(d) == want(range(30, 90))
    d.restart()
    assert d.poll_sources() == 0 and ids(d) == []  # everything committed: nothing re-read


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_follow_reads_new_files_as_they_arrive_and_never_a_finished_file_again(
    tmp_path: Path, fmt: str
) -> None:
    cls, write = WRITERS[fmt]
    src = tmp_path / "in"
    d = TopologyTestDriver(topology(cls(src, follow=True)))
    assert d.poll_sources() == 0  # (the directory does not exist yet: nothing to read)
    src.mkdir()
    write(src / f"001.{fmt}", 0, 20)
    assert d.poll_sources() == 20 and ids(d) == want(range(20))
    assert d.poll_sources() == 0 and not d.feeds[0].exhausted  # followed: never exhausted
    write(src / f"002.{fmt}", 20, 20)
    (src / f".003.{fmt}.tmp").write_text("not yet")  # hidden: being written
    assert d.poll_sources() == 20 and ids(d) == want(range(20, 40))
    d.restart()
    write(src / f"000.{fmt}", 100, 5)  # arrives late with an earlier name: still read, once
    assert d.poll_sources() == 5 and ids(d) == want(range(100, 105))
    d.restart()
    assert d.poll_sources() == 0


def test_one_file_bounded_ends_and_records_carry_the_file_time(tmp_path: Path) -> None:
    f = tmp_path / "one.jsonl"
    write_jsonl(f, 0, 12)
    t = st.Topology("one")
    t.source_from(JsonLinesSource(f)).map(lambda k, v: (k, v["i"])).to("out", value=st.serde.INT)
    d = TopologyTestDriver(t)
    assert d.poll_sources(batch_size=5) == 12
    assert d.feeds[0].exhausted
    recs = d.read("out")
    assert [r.value for r in recs] == list(range(12))
    mtime = int(f.stat().st_mtime * 1000)
    assert [r.timestamp for r in recs] == [mtime] * 12  # default timestamp: the file's mtime


def test_bad_json_lines_follow_the_source_error_policy(tmp_path: Path) -> None:
    f = tmp_path / "in.jsonl"
    f.write_text('{"i": 1, "amount": 1}\nnot json\n\n{"i": 2, "amount": 2}\n')
    t = st.Topology("bad")
    t.source_from(JsonLinesSource(f), on_error="skip").to("out")
    d = TopologyTestDriver(t)
    d.poll_sources()
    assert ids(d) == [1, 2]
    assert sum(d.dropped.values()) == 1
    t2 = st.Topology("bad2")
    t2.source_from(JsonLinesSource(f)).to("out")
    with pytest.raises(SerializationError, match=r"offset 1: .* reading in.jsonl"):
        TopologyTestDriver(t2).poll_sources()


def test_event_time_from_a_field_and_windows_close_at_end_of_input(tmp_path: Path) -> None:
    f = tmp_path / "ev.parquet"
    pq.write_table(pa.table({"k": ["a", "b", "a", "a"], "ts": [0, 1_000, 61_000, 62_000]}), f)
    t = st.Topology("win")
    (
        t.source_from(ParquetSource(f), timestamp="ts")
        .key_by("k")
        .window("per-minute", st.windows.tumbling(minutes=1))
        .count()
        .to("out")
    )
    d = TopologyTestDriver(t)
    d.poll_sources()
    d.end_of_input()
    got = sorted((r.key, r.value["window_start"], r.value["n"]) for r in d.read("out"))
    assert got == [("a", 0, 1), ("a", 60_000, 2), ("b", 0, 1)]


def test_csv_column_types_are_kept_across_a_restart_mid_file(tmp_path: Path) -> None:
    f = tmp_path / "in.csv"
    f.write_text("id,code\n" + "".join(f"{i},{'' if i < 10 else str(i)}\n" for i in range(20)))
    t = st.Topology("csv")
    t.source_from(CsvSource(f, column_types={"code": pa.string()})).to("out")
    d = TopologyTestDriver(t, auto_commit=False)
    feed = d.feeds[0]
    batch = feed.poll(10)
    assert batch is not None
    feed.run(batch)
    d._pump()
    d.commit()
    d.restart()
    d.poll_sources()
    d.commit()
    codes = [v["code"] for v in d.read_values("out")]
    assert codes == [""] * 10 + [str(i) for i in range(10, 20)]  # strings, also after


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(StreamsError, match="poll_interval"):
        JsonLinesSource(tmp_path, poll_interval=0)
    with pytest.raises(TopologyError, match="Source"):
        st.Topology("x").source_from("a.jsonl")  # type: ignore[arg-type]
    d = TopologyTestDriver(topology(JsonLinesSource(tmp_path / "missing")))
    with pytest.raises(StreamsError, match="no such file"):
        d.poll_sources()


def test_the_worker_reads_a_directory_to_its_end_and_resumes_after_a_restart(
    tmp_path: Path,
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for k in range(3):
        write_jsonl(src / f"{k}.jsonl", k * 100, 100)
    b = EmbeddedBroker()
    b.create_topic("out", 1)
    config = st.Config(state_dir=str(tmp_path / "state"), max_poll_records=30)
    w = st.Worker(topology(JsonLinesSource(src)), b, config)
    asyncio.run(w.run(until_idle=True))
    out = [st.serde.JSON.deserialize(m.value)["i"] for m in b.fetch(st.TopicPartition("out", 0), 0)]
    assert out == want(range(300))
    write_jsonl(src / "3.jsonl", 300, 50)
    w2 = st.Worker(topology(JsonLinesSource(src)), b, config)
    asyncio.run(w2.run(until_idle=True))
    out = [st.serde.JSON.deserialize(m.value)["i"] for m in b.fetch(st.TopicPartition("out", 0), 0)]
    assert out == want(range(350))  # the second run read only the new file


def test_run_bounded_reads_connector_sources_to_their_end(tmp_path: Path) -> None:
    write_parquet(tmp_path / "a.parquet", 0, 40)
    write_parquet(tmp_path / "b.parquet", 40, 40)
    t = st.Topology("bounded")
    (
        t.source_from(ParquetSource(tmp_path))
        .key_by(lambda v: "all")
        .aggregate("total", st.agg.sum("i"))
        .to("out", value=st.serde.INT)
    )
    out = st.run_bounded(t, {}, batch_size=15)
    assert out["out"][-1].value == sum(range(80))
