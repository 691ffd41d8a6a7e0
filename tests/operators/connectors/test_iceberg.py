"""IcebergSink's writer on a real table (pyiceberg's SQL catalog on SQLite): snapshots with
their input positions, recovery, partitioning, schema evolution, concurrent writers; read back
with pyiceberg and with DuckDB."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from operators.connectors.api import SinkBatch, SinkRecord
from operators.connectors.iceberg import SUMMARY_PREFIX, IcebergSink, IcebergWriter
from streams.core.errors import ProcessingError, TopologyError

pytest.importorskip("pyiceberg")


def batch(*values: Any, first: int = 0, topic: str = "in:0") -> SinkBatch:
    return SinkBatch([SinkRecord(None, v, 7, (), first + i) for i, v in enumerate(values)], topic)


def read(sink: IcebergSink) -> list[dict[str, Any]]:
    return sink.load_catalog().load_table(sink.table).scan().to_arrow().to_pylist()


def data_files(sink: IcebergSink) -> list[str]:
    table = sink.load_catalog().load_table(sink.table)
    return [t.file.file_path.removeprefix("file://") for t in table.scan().plan_files()]


def test_one_snapshot_per_commit_with_its_positions(tmp_path: Path) -> None:
    sink = IcebergSink("lake.payments", warehouse=tmp_path, partition_by=["country"])
    w = IcebergWriter(sink, "app-lake-0000", "lake")
    assert w.recover() == {}
    w.write(batch({"id": 1, "country": "NL", "amount": 1.5}, {"id": 2, "country": "DE"}))
    w.write(batch(None, first=2))  # a tombstone: no row
    w.prepare({"in:0": 3})
    w.publish()
    w.write(batch({"id": 3, "country": "NL", "amount": 2.0}, first=3))
    w.prepare({"in:0": 4})
    table = sink.load_catalog().load_table("lake.payments")
    snaps = table.snapshots()
    assert len(snaps) == 2
    assert [s.summary.additional_properties[SUMMARY_PREFIX + "app-lake-0000"] for s in snaps] == [
        '{"in:0": 3}',
        '{"in:0": 4}',
    ]
    assert str(table.spec().fields[0].transform) == "identity"
    assert sorted((r["id"], r["country"], r["amount"]) for r in read(sink)) == [
        (1, "NL", 1.5),
        (2, "DE", None),
        (3, "NL", 2.0),
    ]
    assert w.tombstones_skipped == 1
    assert IcebergWriter(sink, "app-lake-0000", "lake").recover() == {"in:0": 4}
    assert IcebergWriter(sink, "app-lake-0001", "lake").recover() == {}
    # partitioned data files: one directory per country (Hive style)
    assert {Path(f).parent.name for f in data_files(sink)} == {"country=NL", "country=DE"}


def test_read_back_with_duckdb(tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    sink = IcebergSink("lake.t", warehouse=tmp_path)
    w = IcebergWriter(sink, "app-t-0000", "t")
    w.recover()
    w.write(batch(*({"id": i, "v": i * 10} for i in range(100))))
    w.prepare({"in:0": 100})
    # DuckDB's iceberg extension is downloaded on first use (not possible offline): read the
    # table's current data files, as pyiceberg plans them, with read_parquet
    files = data_files(sink)
    got = duckdb.sql(
        f"SELECT count(*), sum(v) FROM read_parquet({files!r}, union_by_name = true)"
    ).fetchall()
    assert got == [(100, sum(i * 10 for i in range(100)))]


def test_new_fields_add_columns_and_types_conform(tmp_path: Path) -> None:
    sink = IcebergSink("lake.e", warehouse=tmp_path, timestamp_column="ts")
    w = IcebergWriter(sink, "app-e-0000", "e")
    w.recover()
    w.write(batch({"id": 1, "note": None}))  # an all-null column has no type: not created yet
    w.prepare({"in:0": 1})
    w.write(batch({"id": 2, "note": "hi", "tags": ["a"]}, first=1))
    w.prepare({"in:0": 2})
    schema = sink.load_catalog().load_table("lake.e").schema()
    assert [f.name for f in schema.fields] == ["id", "ts", "note", "tags"]
    assert sorted(read(sink), key=lambda r: r["id"]) == [
        {"id": 1, "ts": 7, "note": None, "tags": None},
        {"id": 2, "ts": 7, "note": "hi", "tags": ["a"]},
    ]
    w.write(batch({"id": "not a number"}, first=2))
    with pytest.raises(ProcessingError, match="step 'e'.*column 'id'"):
        w.prepare({"in:0": 3})
    w.write(batch({"id": 1}, {"id": "x"}, first=3))
    with pytest.raises(ProcessingError, match="step 'e'.*one Arrow schema"):
        w.prepare({"in:0": 5})
    strict = IcebergSink("lake.e", warehouse=tmp_path, add_columns=False)
    ws = IcebergWriter(strict, "app-e-0001", "e")
    ws.recover()
    ws.write(batch({"id": 3, "other": 1.0}))
    with pytest.raises(ProcessingError, match=r"columns \['other'\]"):
        ws.prepare({"in:0": 1})


def test_writers_of_several_partitions_commit_concurrently(tmp_path: Path) -> None:
    sink = IcebergSink("lake.c", warehouse=tmp_path)
    errors: list[BaseException] = []

    def run(p: int) -> None:
        try:
            w = IcebergWriter(sink, f"app-c-{p:04d}", "c")
            w.recover()
            for n in range(5):
                w.write(batch({"p": p, "n": n}, first=n, topic=f"in:{p}"))
                w.prepare({f"in:{p}": n + 1})
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(p,)) for p in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sorted((r["p"], r["n"]) for r in read(sink)) == [
        (p, n) for p in range(3) for n in range(5)
    ]
    table = sink.load_catalog().load_table("lake.c")
    assert len(table.snapshots()) == 15
    for p in range(3):
        assert IcebergWriter(sink, f"app-c-{p:04d}", "c").recover() == {f"in:{p}": 5}


def test_configuration_errors() -> None:
    with pytest.raises(TopologyError, match="either warehouse= or catalog="):
        IcebergSink("a.b")
    with pytest.raises(TopologyError, match="partition 'x'"):
        IcebergSink("a.b", warehouse="/tmp/x", partition_by=[("x", "sideways")])
    schema = pa.schema([("id", pa.int64())])
    assert IcebergSink("a.b", warehouse="/tmp/x", schema=schema).schema == schema


def test_a_given_schema_types_its_fields_and_others_are_added(tmp_path: Path) -> None:
    schema = pa.schema([("id", pa.int32()), ("amount", pa.float32())])
    sink = IcebergSink("lake.s", warehouse=tmp_path, schema=schema)
    w = IcebergWriter(sink, "app-s-0000", "s")
    w.recover()
    w.write(batch({"id": 1, "amount": 2.5, "note": "x"}, {"id": 2}))
    w.prepare({"in:0": 2})
    table = sink.load_catalog().load_table("lake.s")
    assert [(f.name, str(f.field_type)) for f in table.schema().fields] == [
        ("id", "int"),
        ("amount", "float"),
        ("note", "string"),
    ]
    assert sorted(read(sink), key=lambda r: r["id"]) == [
        {"id": 1, "amount": 2.5, "note": "x"},
        {"id": 2, "amount": None, "note": None},
    ]
