"""A PostgreSQL sink: upserts (or appends) rows into a table, each input range exactly once.

``stream.to_sink(PostgresSink(dsn, "public.balances", primary_key="account"))`` keeps the
table equal to the stream's latest value per key: a record's value (a mapping: its fields are
the columns; another value goes into column ``value``) is upserted
(``INSERT ... ON CONFLICT (pk) DO UPDATE``), a tombstone (value ``None``) deletes the row of
its key. ``mode="append"`` inserts every record instead (no key; tombstones are counted in
``tombstones_skipped``). The table is created from the first rows' types when missing
(``create_table``), and columns the rows gain are added (``add_columns``).

**Commit and recovery.** At each task commit (:meth:`PostgresWriter.prepare`) the rows written
since the last one go out in *one* PostgreSQL transaction: the latest operation per key is
COPY'd into a temporary table and merged into the target, deletes applied, and the task's
input positions the rows cover are upserted in a bookkeeping table
(``streams_sink_offsets``: writer, input partition, next offset) *in the same transaction*.
So the table and its bookkeeping never disagree: whatever the Kafka side of the commit does
next, the table holds exactly the input below the recorded positions. A recovered writer
(:meth:`PostgresWriter.recover`) reads its positions back and the runtime skips the re-read
records below them: no input range is applied twice, under at-least-once as under
exactly-once, and none is lost (the transaction commits before the input offsets do). Rows
are visible once that transaction commits, slightly before the task's Kafka commit; under
exactly-once a failed Kafka commit does not undo them (the input they came from is read again
and skipped, so they stand for it).

**Fencing.** A writer is ``{app_id}-{step}-{partition}``; at recovery it takes the next
*generation* in ``streams_sink_writers``, and every commit first checks (row-locked) that
it still holds the latest: a zombie (a task moved to another worker while its old owner
still runs) fails its commit with a :class:`~streams.core.errors.ProcessingError` instead of
writing older rows over the new owner's.

Tested against a real server started by ``scripts/postgres/postgres``. Needs the ``postgres``
extra (``psycopg[binary]``).

>>> sink = PostgresSink("postgresql://127.0.0.1/db", "public.balances", primary_key="account")
>>> sink.describe()
'PostgresSink public.balances upsert (account)'
>>> PostgresSink("postgresql://127.0.0.1/db", "t", mode="upsert")
Traceback (most recent call last):
...
streams.core.errors.TopologyError: PostgresSink 't': upsert needs primary_key or key_column
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from operators.connectors.api import Sink, SinkBatch, SinkContext, SinkWriter
from streams.core.errors import ProcessingError, TopologyError

Mode = Literal["upsert", "append"]
OFFSETS_TABLE = "streams_sink_offsets"
WRITERS_TABLE = "streams_sink_writers"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
_DELETE = object()  # a pending delete (a tombstone's key)


def _import_psycopg() -> Any:
    try:
        import psycopg
    except ImportError as e:  # pragma: no cover - the extra is in dev
        raise ImportError("PostgresSink needs psycopg: pip install 'streams-dsl[postgres]'") from e
    return psycopg


def _split_name(table: str) -> tuple[str, str]:
    schema, _, name = table.rpartition(".")
    return schema or "public", name


def pg_type(value: Any) -> str:
    """The column type a new column gets for a Python value.

    >>> pg_type(1), pg_type(1.5), pg_type("a"), pg_type({"a": 1}), pg_type(None)
    ('bigint', 'double precision', 'text', 'jsonb', 'text')
    """
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint"
    if isinstance(value, float):
        return "double precision"
    if isinstance(value, decimal.Decimal):
        return "numeric"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "bytea"
    if isinstance(value, dt.datetime):
        return "timestamptz" if value.tzinfo is not None else "timestamp"
    if isinstance(value, dt.date):
        return "date"
    if isinstance(value, uuid.UUID):
        return "uuid"
    if isinstance(value, (Mapping, list, tuple)):
        return "jsonb"
    return "text"


class PostgresSink(Sink):
    """Upsert (or append) a stream into a PostgreSQL table (see the module docstring).

    ``primary_key``: the column(s) rows are upserted on (default: ``key_column``);
    ``key_column`` / ``timestamp_column``: columns that receive the record's key / timestamp;
    ``column_types``: SQL types for created columns (others are inferred from the values).
    """

    default_name = "postgres"

    def __init__(
        self,
        dsn: str,
        table: str,
        *,
        primary_key: str | Sequence[str] | None = None,
        key_column: str | None = None,
        timestamp_column: str | None = None,
        mode: Mode = "upsert",
        create_table: bool = True,
        add_columns: bool = True,
        column_types: Mapping[str, str] | None = None,
    ) -> None:
        schema, name = _split_name(table)
        where = f"PostgresSink {table!r}"
        for part in (schema, name, key_column, timestamp_column):
            if part is not None and not _NAME.match(part):
                raise TopologyError(f"{where}: {part!r} is not a plain SQL identifier")
        if mode not in ("upsert", "append"):
            raise TopologyError(f"{where}: mode must be 'upsert' or 'append', not {mode!r}")
        pk = (primary_key,) if isinstance(primary_key, str) else tuple(primary_key or ())
        if not pk and key_column is not None:
            pk = (key_column,)
        if mode == "upsert" and not pk:
            raise TopologyError(f"{where}: upsert needs primary_key or key_column")
        self.dsn, self.schema, self.table = dsn, schema, name
        self.primary_key = pk
        self.key_column, self.timestamp_column = key_column, timestamp_column
        self.mode: Mode = mode
        self.create_table, self.add_columns = create_table, add_columns
        self.column_types = dict(column_types or {})

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.table}"

    def open(self, ctx: SinkContext) -> PostgresWriter:
        return PostgresWriter(self, ctx.writer_id, ctx.step)

    def describe(self) -> str:
        pk = f" ({', '.join(self.primary_key)})" if self.mode == "upsert" else ""
        return f"PostgresSink {self.qualified} {self.mode}{pk}"


class PostgresWriter(SinkWriter):
    """One task's writer: buffers the latest operation per key, commits them with the input
    positions in one transaction at ``prepare``."""

    def __init__(self, sink: PostgresSink, writer_id: str, step: str) -> None:
        self.sink, self.writer_id, self.step = sink, writer_id, step
        self._pg = _import_psycopg()
        self._conn: Any = None
        self._generation: int | None = None
        self._columns: dict[str, str] | None = None  # the target's columns -> SQL type
        self._pending: dict[tuple[Any, ...], Any] = {}  # pk -> row dict or _DELETE
        self._appends: list[dict[str, Any]] = []
        self._wrote_since_prepare = False
        self.rows_written = 0  # rows upserted or appended (after per-key dedup)
        self.rows_deleted = 0
        self.tombstones_skipped = 0
        self.transactions = 0

    # -- connection and bookkeeping -----------------------------------------------------------
    def _sql(self) -> Any:
        return self._pg.sql

    def _ident(self, *parts: str) -> Any:
        return self._sql().Identifier(*parts)

    def _connect(self) -> Any:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = self._pg.connect(
                self.sink.dsn, autocommit=False, application_name=self.writer_id[:63]
            )
            self._columns = None
        return self._conn

    def _ensure_bookkeeping(self, conn: Any) -> None:
        sql, s = self._sql(), self.sink.schema
        stmts = [
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(self._ident(s)),
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (writer text PRIMARY KEY, generation bigint NOT"
                " NULL, target text NOT NULL, updated timestamptz NOT NULL DEFAULT now())"
            ).format(self._ident(s, WRITERS_TABLE)),
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (writer text NOT NULL, input text NOT NULL,"
                " next_offset bigint NOT NULL, PRIMARY KEY (writer, input))"
            ).format(self._ident(s, OFFSETS_TABLE)),
        ]
        for attempt in range(5):  # concurrent CREATE ... IF NOT EXISTS can still collide
            try:
                for stmt in stmts:
                    conn.execute(stmt)
                conn.commit()
                return
            except (self._pg.errors.UniqueViolation, self._pg.errors.DuplicateObject):
                conn.rollback()
                if attempt == 4:
                    raise

    def recover(self) -> Mapping[str, int]:
        """Take the next generation (fencing older owners) and return the input positions
        the table already holds."""
        self._pending.clear()
        self._appends.clear()
        self._take_generation()
        return self.published_positions()

    def _take_generation(self) -> None:
        conn = self._connect()
        if conn.info.transaction_status != self._pg.pq.TransactionStatus.IDLE:
            conn.rollback()
        self._ensure_bookkeeping(conn)
        sql, s = self._sql(), self.sink.schema
        row = conn.execute(
            sql.SQL(
                "INSERT INTO {} (writer, generation, target) VALUES (%s, 1, %s) ON CONFLICT"
                " (writer) DO UPDATE SET generation = {}.generation + 1, target ="
                " EXCLUDED.target, updated = now() RETURNING generation"
            ).format(self._ident(s, WRITERS_TABLE), self._ident(WRITERS_TABLE)),
            (self.writer_id, self.sink.qualified),
        ).fetchone()
        conn.commit()
        self._generation = int(row[0])

    def published_positions(self) -> dict[str, int]:
        """The input positions the table holds for this writer (a fresh read)."""
        conn = self._connect()
        rows = conn.execute(
            self._sql()
            .SQL("SELECT input, next_offset FROM {} WHERE writer = %s")
            .format(self._ident(self.sink.schema, OFFSETS_TABLE)),
            (self.writer_id,),
        ).fetchall()
        conn.commit()
        return {str(i): int(o) for i, o in rows}

    # -- records ------------------------------------------------------------------------------
    def write(self, batch: SinkBatch) -> None:
        s = self.sink
        kc, tc, pk = s.key_column, s.timestamp_column, s.primary_key
        upsert = s.mode == "upsert"
        pending, appends = self._pending, self._appends
        for k, v, ts, _h, o in batch.raw:  # (tuples: no SinkRecord per record)
            if v is None:
                if not upsert:
                    self.tombstones_skipped += 1
                    continue
                pending[self._key_of(k, o)] = _DELETE
                continue
            if type(v) is dict and kc is None and tc is None:
                row = v  # (read only from here on)
            else:
                row = dict(v) if isinstance(v, Mapping) else {"value": v}
                if kc is not None:
                    row[kc] = k
                if tc is not None:
                    row[tc] = ts
            if upsert:
                try:
                    key = tuple(row[c] for c in pk)
                except KeyError as e:
                    raise ProcessingError(
                        f"row has no primary key column {e.args[0]!r} (of {list(pk)})",
                        step=self.step,
                        offset=o,
                    ) from None
                if None in key:
                    raise ProcessingError(
                        f"row has a null primary key {dict(zip(pk, key, strict=True))}",
                        step=self.step,
                        offset=o,
                    )
                pending[key] = row
            else:
                appends.append(row)
        self._wrote_since_prepare = True

    def _key_of(self, key: Any, offset: int) -> tuple[Any, ...]:
        pk = self.sink.primary_key
        if isinstance(key, Mapping):
            try:
                return tuple(key[c] for c in pk)
            except KeyError as e:
                raise ProcessingError(
                    f"tombstone key has no primary key column {e.args[0]!r}",
                    step=self.step,
                    offset=offset,
                ) from None
        if len(pk) == 1 and key is not None:
            return (key,)
        raise ProcessingError(
            f"a tombstone's key {key!r} does not name the primary key {list(pk)}",
            step=self.step,
            offset=offset,
        )

    # -- the commit ---------------------------------------------------------------------------
    def prepare(self, positions: Mapping[str, int]) -> None:
        """Apply the buffered operations and record ``positions`` in one transaction."""
        if not self._wrote_since_prepare:
            return
        if self._generation is None:
            self._take_generation()  # (a writer used without the runtime's recover)
        conn = self._connect()
        try:
            self._check_generation(conn)
            rows = [r for r in self._pending.values() if r is not _DELETE] or self._appends
            deletes = [k for k, r in self._pending.items() if r is _DELETE]
            if rows:
                self._write_rows(conn, rows)
            if deletes:
                self._delete(conn, deletes)
            if positions:
                conn.cursor().executemany(
                    self._sql()
                    .SQL(
                        "INSERT INTO {} (writer, input, next_offset) VALUES (%s, %s, %s) ON"
                        " CONFLICT (writer, input) DO UPDATE SET next_offset ="
                        " GREATEST({}.next_offset, EXCLUDED.next_offset)"
                    )
                    .format(
                        self._ident(self.sink.schema, OFFSETS_TABLE), self._ident(OFFSETS_TABLE)
                    ),
                    [(self.writer_id, inp, off) for inp, off in positions.items()],
                )
            conn.commit()
        except self._pg.Error as e:
            self._rollback()
            raise ProcessingError(
                f"{self.sink.describe()}: the commit's transaction failed (nothing of it is"
                f" written): {type(e).__name__}: {e}",
                step=self.step,
            ) from e
        except BaseException:
            self._rollback()
            raise
        self.transactions += 1
        self._pending, self._appends = {}, []
        self._wrote_since_prepare = False

    def publish(self) -> None:
        """Nothing left to do: ``prepare``'s transaction made the rows and positions durable
        together (see the module docstring)."""
        return None

    def abort(self) -> None:
        self._pending, self._appends = {}, []
        self._wrote_since_prepare = False
        self._rollback()

    def close(self) -> None:
        if self._conn is not None:
            self._rollback()
            self._conn.close()
            self._conn = None

    def _rollback(self) -> None:
        if self._conn is not None and not (self._conn.closed or self._conn.broken):
            try:
                self._conn.rollback()
            except self._pg.Error:
                self._conn.close()
            self._columns = None  # DDL may have been rolled back

    def _check_generation(self, conn: Any) -> None:
        row = conn.execute(
            self._sql()
            .SQL("SELECT generation FROM {} WHERE writer = %s FOR UPDATE")
            .format(self._ident(self.sink.schema, WRITERS_TABLE)),
            (self.writer_id,),
        ).fetchone()
        if row is None or int(row[0]) != self._generation:
            raise ProcessingError(
                f"writer {self.writer_id} was fenced: generation {self._generation} is not the"
                f" latest ({None if row is None else row[0]}); another owner of this partition"
                " took over",
                step=self.step,
            )

    def _target_columns(self, conn: Any) -> dict[str, str]:
        if self._columns is None:
            rows = conn.execute(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
                " WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped"
                " ORDER BY a.attnum",
                (self._ident(self.sink.schema, self.sink.table).as_string(conn),),
            ).fetchall()
            self._columns = {str(n): str(t) for n, t in rows}
        return self._columns

    def _ensure_columns(self, conn: Any, rows: Sequence[Mapping[str, Any]]) -> list[str]:
        """The target's columns the rows use (creating the table or columns as needed)."""
        s, sql = self.sink, self._sql()
        names: set[str] = set().union(*rows)  # the rows' columns
        cols = self._target_columns(conn)
        target = self._ident(s.schema, s.table)
        seen: dict[str, Any] = {}  # new columns in first-seen order: a non-null value (a type)
        if not names.issubset(cols):
            for r in rows:
                for c, v in r.items():
                    if seen.get(c) is None and c not in cols:
                        seen[c] = v
        if not cols:
            if not s.create_table:
                raise ProcessingError(f"table {s.qualified} does not exist", step=self.step)
            order = [*s.primary_key, *(c for c in seen if c not in s.primary_key)]
            defs = [
                sql.SQL("{} {}").format(
                    self._ident(c), sql.SQL(s.column_types.get(c) or pg_type(seen.get(c)))
                )
                for c in order
            ]
            if s.mode == "upsert":
                defs.append(
                    sql.SQL("PRIMARY KEY ({})").format(
                        sql.SQL(", ").join(self._ident(c) for c in s.primary_key)
                    )
                )
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(self._ident(s.schema)))
            conn.execute(
                sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
                    target, sql.SQL(", ").join(defs)
                )
            )
            self._columns = None
            cols = self._target_columns(conn)
        missing = [c for c in seen if c not in cols]
        if missing:
            if not s.add_columns:
                raise ProcessingError(
                    f"rows have columns {missing} that table {s.qualified} lacks", step=self.step
                )
            for c in missing:
                conn.execute(
                    sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                        target,
                        self._ident(c),
                        sql.SQL(s.column_types.get(c) or pg_type(seen[c])),
                    )
                )
            self._columns = None
            cols = self._target_columns(conn)
        return [c for c in cols if c in names]

    def _write_rows(self, conn: Any, rows: Sequence[Mapping[str, Any]]) -> None:
        s, sql = self.sink, self._sql()
        cols = self._ensure_columns(conn, rows)
        types = self._target_columns(conn)
        json_cols = {i for i, c in enumerate(cols) if types[c] in ("json", "jsonb")}
        jsonb = self._pg.types.json.Jsonb
        target = self._ident(s.schema, s.table)
        col_list = sql.SQL(", ").join(self._ident(c) for c in cols)
        upsert = s.mode == "upsert"
        into = self._ident("streams_stage") if upsert else target
        if upsert:
            conn.execute(
                sql.SQL(
                    "CREATE TEMP TABLE streams_stage ON COMMIT DROP AS SELECT {} FROM {}"
                    " WITH NO DATA"
                ).format(col_list, target)
            )
        with conn.cursor().copy(sql.SQL("COPY {} ({}) FROM STDIN").format(into, col_list)) as copy:
            for r in rows:
                vals = [r.get(c) for c in cols]
                for i in json_cols:
                    if vals[i] is not None:
                        vals[i] = jsonb(vals[i])
                copy.write_row(vals)
        if upsert:
            rest = [c for c in cols if c not in s.primary_key]
            action = (
                sql.SQL("DO UPDATE SET {}").format(
                    sql.SQL(", ").join(
                        sql.SQL("{} = EXCLUDED.{}").format(self._ident(c), self._ident(c))
                        for c in rest
                    )
                )
                if rest
                else sql.SQL("DO NOTHING")
            )
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} ({}) SELECT {} FROM streams_stage ON CONFLICT ({}) {}"
                ).format(
                    target,
                    col_list,
                    col_list,
                    sql.SQL(", ").join(self._ident(c) for c in s.primary_key),
                    action,
                )
            )
        self.rows_written += len(rows)

    def _delete(self, conn: Any, keys: Iterable[tuple[Any, ...]]) -> None:
        s, sql = self.sink, self._sql()
        if not self._target_columns(conn):
            return  # nothing to delete from a table that does not exist yet
        keys = list(keys)
        pk = s.primary_key
        cond = sql.SQL(" AND ").join(sql.SQL("{} = %s").format(self._ident(c)) for c in pk)
        with conn.cursor() as cur:
            cur.executemany(
                sql.SQL("DELETE FROM {} WHERE {}").format(self._ident(s.schema, s.table), cond),
                keys,
            )
        self.rows_deleted += len(keys)


__all__ = ["OFFSETS_TABLE", "WRITERS_TABLE", "PostgresSink", "PostgresWriter", "pg_type"]
