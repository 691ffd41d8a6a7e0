"""PostgresSink and IcebergSink through the runtime: the test driver (crashes at each point of
the commit) and the worker on the embedded broker (failed commits under both guarantees).
Each input record must end up in the table exactly once. PostgreSQL runs on a real server
(scripts/postgres/postgres); Iceberg on pyiceberg's SQL catalog on SQLite."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import streams as st
from operators.connectors.iceberg import IcebergSink, IcebergWriter
from operators.connectors.postgres import PostgresSink, PostgresWriter
from streams.core.errors import BrokerError, TaskMigratedError
from streams.runtime.embedded import EmbeddedBroker, EmbeddedConsumer, EmbeddedProducer
from streams.testing import TopologyTestDriver

psycopg = pytest.importorskip("psycopg")
pytest.importorskip("pyiceberg")

KINDS = [pytest.param("postgres", marks=pytest.mark.postgres), "iceberg"]


class Target:
    """A sink of one kind and how to read its table back: the ids it holds, with repeats."""

    def __init__(self, kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self.kind = kind
        if kind == "postgres":
            self.dsn = request.getfixturevalue("postgres_dsn")
            schema = request.getfixturevalue("pg_schema")
            self.sink: Any = PostgresSink(self.dsn, f"{schema}.tx", mode="append")
            self.writer: Any = PostgresWriter
        else:
            self.sink = IcebergSink("lake.tx", warehouse=tmp_path / "lake")
            self.writer = IcebergWriter

    def ids(self) -> list[int]:
        if self.kind == "postgres":
            with psycopg.connect(self.dsn) as conn:
                if conn.execute("SELECT to_regclass(%s)", (self.sink.qualified,)).fetchone()[0]:
                    return sorted(
                        r[0] for r in conn.execute(f"SELECT i FROM {self.sink.qualified}")
                    )
                return []
        from pyiceberg.exceptions import NoSuchTableError

        try:
            table = self.sink.load_catalog().load_table(self.sink.table)
        except NoSuchTableError:
            return []
        return sorted(table.scan().to_arrow().column("i").to_pylist())


@pytest.fixture(params=KINDS)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    return Target(request.param, request, tmp_path)


def topology(sink: Any) -> st.Topology:
    t = st.Topology("sinks")
    t.source("tx").filter(st.col("amount") >= 0).to_sink(sink)
    return t


def tx(n: int, start: int = 0) -> list[tuple[str, dict[str, Any]]]:
    return [(f"c{i % 3}", {"i": i, "amount": i % 7 - 1}) for i in range(start, start + n)]


def want(records: list[tuple[str, dict[str, Any]]]) -> list[int]:
    return sorted(v["i"] for _, v in records if v["amount"] >= 0)


def test_rows_appear_at_commit(target: Target) -> None:
    d = TopologyTestDriver(topology(target.sink), auto_commit=False, partitions=2)
    first = tx(40)
    d.pipe_many("tx", first)
    assert target.ids() == []  # processed, not committed
    d.commit()
    assert target.ids() == want(first)
    d.pipe_many("tx", tx(20, 40))
    d.commit()
    assert target.ids() == want(tx(60))
    d.close()


class _Crash(Exception):
    """The process dies here."""


def _crash_in(monkeypatch: pytest.MonkeyPatch, target: Target, point: str) -> None:
    """Make the driver's next commit die at ``point``."""
    from streams.runtime import driver as driver_mod

    async def adie(*_a: object, **_k: object) -> None:
        raise _Crash(point)

    def die(*_a: object, **_k: object) -> None:
        raise _Crash(point)

    if point == "mid-prepare":  # inside the sink's transaction / before the snapshot commits
        if target.kind == "postgres":
            monkeypatch.setattr(PostgresWriter, "_delete", die)  # after the rows, before COMMIT
            real = PostgresWriter._write_rows

            def rows_then_die(self: Any, conn: Any, rows: Any) -> None:
                real(self, conn, rows)
                raise _Crash(point)

            monkeypatch.setattr(PostgresWriter, "_write_rows", rows_then_die)
        else:
            monkeypatch.setattr(IcebergWriter, "_conform", die)
    elif point == "after-prepare":  # the table committed, the changelog not sent
        real_prepare = target.writer.prepare

        def prepare_then_die(self: Any, *a: Any) -> None:
            real_prepare(self, *a)
            raise _Crash(point)

        monkeypatch.setattr(target.writer, "prepare", prepare_then_die)
    elif point == "after-changelog":  # changelog durable, offsets not committed
        monkeypatch.setattr(driver_mod._DriverIO, "commit_offsets", adie)
    elif point == "after-offsets":  # offsets committed, publish not run
        monkeypatch.setattr(target.writer, "publish", die)
    else:
        raise AssertionError(point)


CRASH_POINTS = ["mid-prepare", "after-prepare", "after-changelog", "after-offsets"]


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_crash_at_any_point_of_the_commit_writes_every_row_once(
    target: Target, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    d = TopologyTestDriver(topology(target.sink), auto_commit=False, partitions=2)
    a, b, c = tx(40), tx(40, 40), tx(40, 80)
    d.pipe_many("tx", a)
    d.commit()
    for _ in range(2):  # twice in a row: the commit after the re-read dies too
        d.pipe_many("tx", b)
        _crash_in(monkeypatch, target, point)
        with pytest.raises(_Crash):
            d.commit()
        monkeypatch.undo()
        d.crash()
        d.restart()  # re-reads what the offsets do not cover
        b = tx(10, 120 + _ * 10)
    d.commit()
    d.pipe_many("tx", c)
    d.commit()
    expected = want(a + tx(40, 40) + tx(10, 120) + c)
    assert target.ids() == expected  # each row once
    assert not [i for i, n in Counter(target.ids()).items() if n > 1]
    d.close()


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_failed_commits_on_the_worker_write_every_row_once(
    target: Target, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, guarantee: str
) -> None:
    """The worker's commit fails after the sink prepared (its rows are in the table): under
    at-least-once the group refuses the offsets, under exactly-once the transaction aborts.
    The tasks restart from their last commit; the re-read records are skipped."""
    b = EmbeddedBroker(default_partitions=2)
    b.create_topic("tx", 2)
    records = tx(600)
    for i, (key, value) in enumerate(records):
        b.append("tx", i % 2, key.encode(), st.serde.JSON.serialize(value), i)
    failures: list[Any] = []
    if guarantee == "at_least_once":
        real_commit = EmbeddedConsumer.commit

        async def refuse(self: Any, offsets: Any, metadata: Any = None) -> None:
            if offsets and len(failures) < 3:
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
    w = st.Worker(topology(target.sink), b, config)
    asyncio.run(w.run(until_idle=True))
    assert len(failures) == 3 and w.rebalances >= 3
    assert target.ids() == want(records)  # each row once
