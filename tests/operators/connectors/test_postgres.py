"""PostgresSink's writer against a real server (scripts/postgres/postgres): upserts, deletes,
appends, created and added columns, the bookkeeping of input positions, fencing."""

from __future__ import annotations

from typing import Any

import pytest

from operators.connectors.api import SinkBatch, SinkRecord
from operators.connectors.postgres import PostgresSink, PostgresWriter
from streams.core.errors import ProcessingError, TopologyError

pytestmark = pytest.mark.postgres
psycopg = pytest.importorskip("psycopg")


def batch(*recs: tuple[Any, Any, int], topic: str = "in:0") -> SinkBatch:
    return SinkBatch([SinkRecord(k, v, 0, (), o) for k, v, o in recs], topic)


def rows(dsn: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query).fetchall()


def test_upserts_deletes_and_positions_commit_together(postgres_dsn: str, pg_schema: str) -> None:
    sink = PostgresSink(postgres_dsn, f"{pg_schema}.balances", primary_key="account")
    w = PostgresWriter(sink, "app-pg-0000", "pg")
    assert w.recover() == {}
    w.write(batch(("a", {"account": "a", "n": 1}, 0), ("b", {"account": "b", "n": 2}, 1)))
    w.write(batch(("a", {"account": "a", "n": 3}, 2)))  # the latest value per key wins
    assert rows(postgres_dsn, f"SELECT to_regclass('{pg_schema}.balances')") == [(None,)]
    w.prepare({"in:0": 3})
    w.publish()
    assert rows(postgres_dsn, f"SELECT account, n FROM {pg_schema}.balances ORDER BY 1") == [
        ("a", 3),
        ("b", 2),
    ]
    w.write(batch(("b", None, 3), ("c", {"account": "c", "n": 4, "extra": {"x": 1}}, 4)))
    w.prepare({"in:0": 5})
    got = rows(postgres_dsn, f"SELECT account, n, extra FROM {pg_schema}.balances ORDER BY 1")
    assert got == [("a", 3, None), ("c", 4, {"x": 1})]  # b deleted, jsonb column added
    w.close()
    # a recovered writer reads back what the table holds, and fences the old one
    w2 = PostgresWriter(sink, "app-pg-0000", "pg")
    assert w2.recover() == {"in:0": 5}
    w.write(batch(("a", {"account": "a", "n": 99}, 5)))
    with pytest.raises(ProcessingError, match="fenced"):
        w.prepare({"in:0": 6})
    assert rows(postgres_dsn, f"SELECT n FROM {pg_schema}.balances WHERE account = 'a'") == [(3,)]
    w2.close()


def test_a_failed_transaction_leaves_neither_rows_nor_positions(
    postgres_dsn: str, pg_schema: str
) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {pg_schema}.t (id bigint PRIMARY KEY, n bigint NOT NULL)")
    sink = PostgresSink(postgres_dsn, f"{pg_schema}.t", primary_key="id", add_columns=False)
    w = PostgresWriter(sink, "app-t-0000", "t")
    w.recover()
    w.write(batch((1, {"id": 1, "n": 1}, 0), (2, {"id": 2, "n": None}, 1)))  # NOT NULL fails
    with pytest.raises(ProcessingError, match="step 't'.*NotNullViolation") as err:
        w.prepare({"in:0": 2})
    assert isinstance(err.value.__cause__, psycopg.errors.NotNullViolation)
    assert rows(postgres_dsn, f"SELECT count(*) FROM {pg_schema}.t") == [(0,)]
    assert w.published_positions() == {}
    w.write(batch((3, {"id": 3, "n": 3, "other": 1}, 2)))
    with pytest.raises(ProcessingError, match=r"columns \['other'\]"):
        w.prepare({"in:0": 3})
    w.close()


def test_append_mode_and_key_and_timestamp_columns(postgres_dsn: str, pg_schema: str) -> None:
    sink = PostgresSink(
        postgres_dsn, f"{pg_schema}.events", mode="append", key_column="k", timestamp_column="ts"
    )
    w = PostgresWriter(sink, "app-ev-0001", "ev")
    w.recover()
    w.write(SinkBatch([SinkRecord("x", 1, 10, (), 0), SinkRecord("x", None, 11, (), 1)], "in:1"))
    w.write(SinkBatch([SinkRecord("x", 2, 12, (), 2)], "in:1"))
    w.prepare({"in:1": 3})
    got = rows(postgres_dsn, f"SELECT k, value, ts FROM {pg_schema}.events ORDER BY ts")
    assert got == [("x", 1, 10), ("x", 2, 12)]
    assert w.tombstones_skipped == 1
    w.close()


def test_composite_keys_and_bad_input_name_the_step(postgres_dsn: str, pg_schema: str) -> None:
    sink = PostgresSink(postgres_dsn, f"{pg_schema}.c", primary_key=("a", "b"))
    w = PostgresWriter(sink, "app-c-0000", "c")
    w.recover()
    w.write(batch((None, {"a": 1, "b": "x", "v": 1}, 0), (None, {"a": 1, "b": "y", "v": 2}, 1)))
    w.write(batch(({"a": 1, "b": "x"}, None, 2)))
    w.prepare({"in:0": 3})
    assert rows(postgres_dsn, f"SELECT a, b, v FROM {pg_schema}.c") == [(1, "y", 2)]
    with pytest.raises(ProcessingError, match="step 'c'.*primary key column 'b'"):
        w.write(batch((None, {"a": 2, "v": 1}, 3)))
    with pytest.raises(ProcessingError, match="does not name the primary key"):
        w.write(batch(("k", None, 4)))
    with pytest.raises(ProcessingError, match="offset 5.*null primary key"):
        w.write(batch((None, {"a": 1, "b": None}, 5)))
    w.close()


def test_configuration_errors_name_the_table() -> None:
    with pytest.raises(TopologyError, match="not a plain SQL identifier"):
        PostgresSink("dsn", "public.bad-name", primary_key="id")
    with pytest.raises(TopologyError, match="mode must be"):
        PostgresSink("dsn", "t", primary_key="id", mode="merge")  # type: ignore[arg-type]
    assert PostgresSink("dsn", "s.t", key_column="id").primary_key == ("id",)


def test_the_how_to_example_an_aggregation_upserted(postgres_dsn: str, pg_schema: str) -> None:
    """docs/how-to/write-to-postgres.md's example (skipped there: it needs a server)."""
    import streams as st

    sink = st.connectors.PostgresSink(postgres_dsn, f"{pg_schema}.card_totals", key_column="card")
    assert st.connectors.PostgresSink is PostgresSink
    topo = st.Topology("card-totals")
    totals = (
        topo.source("payments")
        .key_by("card")
        .aggregate("totals", total=st.agg.sum("amount"), n=st.agg.count())
    )
    totals.to_sink(sink)
    driver = st.TopologyTestDriver(topo, auto_commit=False)
    driver.pipe("payments", {"card": "c1", "amount": 250})
    driver.pipe("payments", {"card": "c1", "amount": 50})
    driver.pipe("payments", {"card": "c2", "amount": 5})
    driver.commit()
    got = rows(postgres_dsn, f"SELECT card, total, n FROM {pg_schema}.card_totals ORDER BY 1")
    assert got == [("c1", 300, 2), ("c2", 5, 1)]
    driver.close()


def test_a_tables_changelog_mirrors_the_table_deletes_included(
    postgres_dsn: str, pg_schema: str
) -> None:
    import streams as st

    sink = PostgresSink(postgres_dsn, f"{pg_schema}.accounts", key_column="id")
    topo = st.Topology("mirror")
    topo.table("accounts").changes().to_sink(sink)
    driver = st.TopologyTestDriver(topo, auto_commit=False)
    driver.pipe("accounts", {"owner": "ann", "limit": 10}, key="a1")
    driver.pipe("accounts", {"owner": "bob", "limit": 20}, key="a2")
    driver.commit()
    driver.pipe("accounts", {"owner": "ann", "limit": 15}, key="a1")
    driver.pipe("accounts", None, key="a2")  # a tombstone: the row goes
    driver.pipe("accounts", {"owner": "cy", "limit": 1}, key="a3")
    driver.commit()
    got = rows(postgres_dsn, f'SELECT id, owner, "limit" FROM {pg_schema}.accounts ORDER BY 1')
    assert got == [("a1", "ann", 15), ("a3", "cy", 1)]
    driver.close()
