"""Kafka -> PostgreSQL and Kafka -> Iceberg through the sinks, against the libraries used directly.

    python -m bench connectors [--bootstrap HOST:PORT] [--dsn DSN] [--records 500000]
        [--partitions 2] [--commit-ms 250] [--guarantee at_least_once] [--sinks postgres,iceberg]
        [--record]

Without ``--bootstrap`` / ``--dsn`` a Kafka broker (``scripts/kafka/kafka``) and a PostgreSQL
server (``scripts/postgres/postgres``) are started, and stopped after. The input topic is
filled once with JSON records (``id`` unique, so every upsert inserts a row); then, each from
the start of the input:

* **direct**: a hand-written loop with the same clients and no engine: ``getmany`` ->
  ``msgspec`` decode -> the library, committing the rows read every ``--commit-ms`` (the
  engine's commit interval): psycopg ``COPY`` into a temporary table and ``INSERT ... ON
  CONFLICT DO UPDATE`` in one transaction, or one pyiceberg ``append`` (one snapshot);
* **sink**: a ``Worker`` running ``source -> to_sink(PostgresSink | IcebergSink)``, one writer
  per partition, committing the same rows *and* their input positions per commit.

Rates run from the first batch read to the last row committed; each run checks that the
table holds every input record once. Both paths are warmed up first (imports, first writes),
and the input spans many commit intervals (a run that fits in one or two compares one
snapshot against two, not the paths). The ratio sink/direct is what matters (absolute numbers
move with the machine's load: the broker, the database and the benchmark share the cores).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec

import streams as st
from bench.common import record
from operators.connectors.iceberg import IcebergSink
from operators.connectors.postgres import PostgresSink
from streams.core.partitioner import partition_for
from streams.runtime.broker import TopicPartition, TopicSpec
from streams.runtime.kafka import KafkaBroker

ROOT = Path(__file__).resolve().parents[1]
KAFKA = ROOT / "scripts" / "kafka" / "kafka"
POSTGRES = ROOT / "scripts" / "postgres" / "postgres"


async def fill(b: KafkaBroker, topic: str, n: int, partitions: int) -> None:
    p = b.producer()
    enc = msgspec.json.Encoder().encode
    now = int(time.time() * 1000)
    countries = ("NL", "DE", "FR", "BE")
    for s in range(0, n, 50_000):
        buckets: dict[int, list[Any]] = {}
        for i in range(s, min(n, s + 50_000)):
            k = str(i).encode()
            v = enc(
                {
                    "id": i,
                    "user": f"user-{i % 10_000}",
                    "amount": i % 1000 / 10,
                    "country": countries[i % 4],
                }
            )
            buckets.setdefault(partition_for(k, partitions), []).append((k, v, now, ()))
        for part, recs in buckets.items():
            p.send_batch(topic, part, recs)
        await p.flush()
    await p.close()


# -- the libraries used directly -----------------------------------------------------------
class DirectPostgres:
    def __init__(self, dsn: str, table: str) -> None:
        import psycopg

        self.conn = psycopg.connect(dsn)
        self.table = table
        self.conn.execute(
            f'CREATE TABLE {table} (id bigint PRIMARY KEY, "user" text, amount double precision,'
            " country text)"
        )
        self.conn.commit()

    def write(self, rows: list[dict[str, Any]]) -> None:
        c, cols = self.conn, ("id", "user", "amount", "country")
        latest = {r["id"]: r for r in rows}  # the latest value per key, as the sink does
        c.execute(
            f"CREATE TEMP TABLE stage ON COMMIT DROP AS SELECT * FROM {self.table} WITH NO DATA"
        )
        with c.cursor().copy('COPY stage (id, "user", amount, country) FROM STDIN') as copy:
            for r in latest.values():
                copy.write_row([r[k] for k in cols])
        c.execute(
            f'INSERT INTO {self.table} SELECT * FROM stage ON CONFLICT (id) DO UPDATE SET "user"'
            ' = EXCLUDED."user", amount = EXCLUDED.amount, country = EXCLUDED.country'
        )
        c.commit()

    def count(self) -> int:
        return int(self.conn.execute(f"SELECT count(DISTINCT id) FROM {self.table}").fetchone()[0])

    def close(self) -> None:
        self.conn.close()


class DirectIceberg:
    def __init__(self, sink: IcebergSink) -> None:
        self.catalog = sink.load_catalog()
        self.name = sink.table
        self.table: Any = None

    def write(self, rows: list[dict[str, Any]]) -> None:
        import pyarrow as pa

        data = pa.Table.from_pylist(rows)
        if self.table is None:
            self.catalog.create_namespace_if_not_exists(self.name.split(".")[0])
            self.table = self.catalog.create_table(self.name, schema=data.schema)
        self.table.append(data)

    def count(self) -> int:
        t = self.catalog.load_table(self.name)
        return len(set(t.scan(selected_fields=("id",)).to_arrow().column("id").to_pylist()))

    def close(self) -> None:
        return None


async def direct(
    b: KafkaBroker, src: str, n: int, partitions: int, writer: Any, commit_ms: int
) -> float:
    c = b.consumer(None)
    tps = [TopicPartition(src, p) for p in range(partitions)]
    c.assign(tps)
    for tp in tps:
        c.seek(tp, 0)
    dec = msgspec.json.Decoder().decode
    seen, rows = 0, []
    t0 = last = None
    while seen < n:
        for _tp, msgs in (await c.getmany(timeout_ms=500, max_records=10_000)).items():
            t0 = t0 or time.perf_counter()
            last = last or t0
            rows.extend(dec(m.value) for m in msgs)
            seen += len(msgs)
        if rows and (seen >= n or (time.perf_counter() - last) * 1000 >= commit_ms):
            writer.write(rows)
            rows, last = [], time.perf_counter()
    assert t0 is not None
    dt = time.perf_counter() - t0
    await c.close()
    assert writer.count() == n, (writer.count(), n)
    writer.close()
    return n / dt


def timed(sink: Any, marks: list[float]) -> Any:
    """``sink`` whose writers note when each commit that wrote rows ended (the last one is
    when the last row was committed: the run's end, without the worker's shutdown)."""
    open_writer = sink.open

    def open_(ctx: Any) -> Any:
        w = open_writer(ctx)
        prepare = w.prepare

        def timed_prepare(positions: Any) -> None:
            before = w.rows_written
            prepare(positions)
            if w.rows_written > before:
                marks.append(time.monotonic())

        w.prepare = timed_prepare
        return w

    sink.open = open_
    return sink


async def engine(
    b: KafkaBroker, src: str, n: int, sink: Any, guarantee: str, commit_ms: int, count: Any
) -> float:
    t = st.Topology(f"bench-{uuid.uuid4().hex[:6]}")
    marks: list[float] = []
    t.source(src).to_sink(timed(sink, marks))
    w = st.Worker(
        t,
        b,
        st.Config(
            processing_guarantee=guarantee,  # type: ignore[arg-type]
            state_backend="memory",
            commit_interval_ms=commit_ms,
            state_dir=tempfile.mkdtemp(prefix="bench-conn-state-"),
        ),
    )
    await w.run(until_idle=True)
    assert w.processed == n, (w.processed, n)
    assert w.first_batch_at is not None and marks
    got = count()
    assert got == n, (got, n)
    return n / (max(marks) - w.first_batch_at)


def pg_count(dsn: str, table: str) -> Any:
    def count() -> int:
        import psycopg

        with psycopg.connect(dsn) as conn:
            return int(conn.execute(f"SELECT count(DISTINCT id) FROM {table}").fetchone()[0])

    return count


def ice_count(sink: IcebergSink) -> Any:
    def count() -> int:
        t = sink.load_catalog().load_table(sink.table)
        return len(set(t.scan(selected_fields=("id",)).to_arrow().column("id").to_pylist()))

    return count


async def run_all(args: argparse.Namespace, bootstrap: str, dsn: str | None) -> dict[str, float]:
    b = KafkaBroker(bootstrap)
    tag = uuid.uuid4().hex[:6]
    src = f"bench-conn-in-{tag}"
    n, parts, ms = args.records, args.partitions, args.commit_ms
    await b.create_topics([TopicSpec(src, parts)])
    await fill(b, src, n, parts)
    res: dict[str, float] = {}
    lake = tempfile.mkdtemp(prefix="bench-conn-lake-")
    # warm-up (imports, first writes): whichever path ran first paid them in its timing
    sample = [{"id": i, "user": "u", "amount": 1.0, "country": "NL"} for i in range(10)]
    if "postgres" in args.sinks and dsn is not None:
        DirectPostgres(dsn, f"bench_warmup_{tag}").write(sample)
    if "iceberg" in args.sinks:
        DirectIceberg(IcebergSink(f"bench.warmup_{tag}", warehouse=lake)).write(sample)
    for name in args.sinks.split(","):
        if name == "postgres":
            assert dsn is not None
            d_table, s_table = f"bench_direct_{tag}", f"bench_sink_{tag}"
            res["postgres_direct_rows_per_s"] = await direct(
                b, src, n, parts, DirectPostgres(dsn, d_table), ms
            )
            sink = PostgresSink(dsn, s_table, primary_key="id")
            res["postgres_sink_rows_per_s"] = await engine(
                b, src, n, sink, args.guarantee, ms, pg_count(dsn, f"public.{s_table}")
            )
        elif name == "iceberg":
            d_sink = IcebergSink(f"bench.direct_{tag}", warehouse=lake)
            res["iceberg_direct_rows_per_s"] = await direct(
                b, src, n, parts, DirectIceberg(d_sink), ms
            )
            i_sink = IcebergSink(f"bench.sink_{tag}", warehouse=lake)
            res["iceberg_sink_rows_per_s"] = await engine(
                b, src, n, i_sink, args.guarantee, ms, ice_count(i_sink)
            )
        else:
            raise SystemExit(f"unknown sink {name!r} (postgres, iceberg)")
    await b.close()
    return res


def _start(script: Path, home: str) -> str:
    return subprocess.run(
        [sys.executable, str(script), "start", "--home", home],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench connectors")
    ap.add_argument("--bootstrap")
    ap.add_argument("--dsn")
    ap.add_argument("--records", type=int, default=500_000)
    ap.add_argument("--partitions", type=int, default=2)
    ap.add_argument("--commit-ms", type=int, default=250)
    ap.add_argument("--guarantee", default="at_least_once")
    ap.add_argument("--sinks", default="postgres,iceberg")
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args(argv)
    started: list[tuple[Path, str]] = []
    bootstrap, dsn = args.bootstrap, args.dsn
    try:
        if bootstrap is None:
            home = tempfile.mkdtemp(prefix="bench-kafka-")
            started.append((KAFKA, home))
            bootstrap = _start(KAFKA, home)
        if dsn is None and "postgres" in args.sinks:
            home = tempfile.mkdtemp(prefix="bench-pg-")
            started.append((POSTGRES, home))
            _start(POSTGRES, home)
            dsn = (Path(home) / "dsn").read_text().strip()
        res = asyncio.run(run_all(args, bootstrap, dsn))
    finally:
        for script, home in started:
            subprocess.run(
                [sys.executable, str(script), "stop", "--home", home],
                check=False,
                capture_output=True,
            )
    stats: dict[str, float] = {k: round(v) for k, v in res.items()}
    rows = []
    for name in ("postgres", "iceberg"):
        if f"{name}_sink_rows_per_s" in res:
            ratio = res[f"{name}_sink_rows_per_s"] / res[f"{name}_direct_rows_per_s"]
            stats[f"{name}_ratio"] = round(ratio, 3)
            rows.append(
                f"| Kafka -> {name} | {stats[f'{name}_direct_rows_per_s']:,} | "
                f"{stats[f'{name}_sink_rows_per_s']:,} | {stats[f'{name}_ratio']} |"
            )
    print(json.dumps(stats))
    if args.record:
        body = (
            "| path | direct (library) rows/s | sink rows/s | ratio |\n|---|---:|---:|---:|\n"
            + "\n".join(rows)
            + f"\n\n{args.records:,} JSON records, {args.partitions} partitions, "
            f"{args.guarantee}, commits every {args.commit_ms} ms, one process; a single-node "
            "Kafka broker and PostgreSQL 15 (fsync off, a test server) on the same cores. "
            "Direct: getmany -> msgspec -> psycopg COPY + INSERT ON CONFLICT / pyiceberg "
            "append (SQL catalog on SQLite) per commit interval; sink: a Worker with "
            "PostgresSink / IcebergSink (one writer per partition, positions committed with "
            "the rows).\n"
        )
        record(
            "connectors: Kafka -> PostgreSQL / Iceberg",
            f"python -m bench connectors --records {args.records} --partitions "
            f"{args.partitions} --commit-ms {args.commit_ms} --guarantee {args.guarantee} --record",
            body,
        )
    return 0
