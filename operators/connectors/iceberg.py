"""An Apache Iceberg sink: appends a stream to a table, one snapshot per task commit.

``stream.to_sink(IcebergSink("analytics.payments", warehouse="/data/lake"))`` appends each
record's value (a mapping: its fields are the columns) through a pyiceberg catalog: by default
the SQL catalog on SQLite (``{warehouse}/catalog.db``, data under ``{warehouse}``); any other
catalog by its pyiceberg properties (``catalog={"type": "rest", "uri": "http://..."}``).

- The table is created from the first rows' Arrow schema (or ``schema=``), partitioned by
  ``partition_by`` (``"country"``, ``("ts", "day")``, ``("id", "bucket[16]")``: a column and an
  Iceberg transform, identity by default).
- A batch with fields the table lacks adds them as optional columns (``add_columns``: schema
  evolution by name); columns it lacks are null. Values that do not fit one Arrow schema, or
  the table's types, fail with a :class:`~streams.core.errors.ProcessingError` naming the step.
- Tombstones (value ``None``) have no row in an append-only table: they are counted
  (``tombstones_skipped``).

**Commit and recovery.** At each task commit (:meth:`IcebergWriter.prepare`) the rows written
since the last one are appended as *one* snapshot whose summary holds the task's input
positions they cover (``streams.sink.{writer}``: ``{"topic:partition": next offset}``). A
snapshot is atomic, so the table and those positions never disagree. A recovered writer
(:meth:`IcebergWriter.recover`) walks the table's snapshots back from the current one to its
own latest and returns those positions: the runtime skips the re-read records below them. So
each input range is in the table once, under at-least-once as under exactly-once, and none is
lost (the snapshot commits before the input offsets do). Writers of different partitions
append concurrently (pyiceberg retries a commit that lost a race on the catalog). Expiring
snapshots must keep each writer's latest one, or a recovered writer appends again what it
wrote after its oldest kept snapshot.

Needs the ``iceberg`` extra (``pyiceberg[sql-sqlite,pyarrow]``).

>>> sink = IcebergSink("analytics.payments", warehouse="/tmp/lake", partition_by=[("ts", "day")])
>>> sink.describe()
'IcebergSink analytics.payments (partitioned by day(ts))'
>>> IcebergSink("payments", warehouse="/tmp/lake")
Traceback (most recent call last):
...
streams.core.errors.TopologyError: IcebergSink 'payments': the table needs a namespace ('ns.table')
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]

from operators.connectors.api import Sink, SinkBatch, SinkContext, SinkWriter
from streams.core.errors import ProcessingError, TopologyError

SUMMARY_PREFIX = "streams.sink."


def _import_pyiceberg() -> Any:
    try:
        import pyiceberg.catalog
    except ImportError as e:  # pragma: no cover - the extra is in dev
        raise ImportError("IcebergSink needs pyiceberg: pip install 'streams-dsl[iceberg]'") from e
    return pyiceberg


class IcebergSink(Sink):
    """Append a stream to an Iceberg table (see the module docstring).

    ``warehouse``: a directory for the default SQL catalog on SQLite; ``catalog``: pyiceberg
    catalog properties instead (``type``, ``uri``, ...; ``catalog_name`` names it);
    ``key_column`` / ``timestamp_column``: columns that receive the record's key / timestamp;
    ``schema``: the Arrow types of known fields (others are typed from their values).
    """

    default_name = "iceberg"

    def __init__(
        self,
        table: str,
        *,
        warehouse: str | os.PathLike[str] | None = None,
        catalog: Mapping[str, str] | None = None,
        catalog_name: str = "streams",
        partition_by: Sequence[str | tuple[str, str]] = (),
        schema: pa.Schema | None = None,
        key_column: str | None = None,
        timestamp_column: str | None = None,
        add_columns: bool = True,
    ) -> None:
        where = f"IcebergSink {table!r}"
        if "." not in table:
            raise TopologyError(f"{where}: the table needs a namespace ('ns.table')")
        if (warehouse is None) == (catalog is None):
            raise TopologyError(f"{where}: give either warehouse= or catalog=")
        parts = [(p, "identity") if isinstance(p, str) else (p[0], p[1]) for p in partition_by]
        transforms = _import_pyiceberg().transforms
        for col, transform in parts:
            try:
                known = not isinstance(
                    transforms.parse_transform(transform), transforms.UnknownTransform
                )
            except (ValueError, AttributeError):
                known = False
            if not known:
                raise TopologyError(
                    f"{where}: partition {col!r}: unknown transform {transform!r} (identity,"
                    " year, month, day, hour, bucket[N], truncate[W])"
                )
        self.table = table
        self.warehouse = None if warehouse is None else os.path.abspath(warehouse)
        self.catalog_props = dict(catalog or {})
        self.catalog_name = catalog_name
        self.partition_by = parts
        self.schema = schema
        self.key_column, self.timestamp_column = key_column, timestamp_column
        self.add_columns = add_columns

    def load_catalog(self) -> Any:
        """The pyiceberg catalog this sink writes through (also for reading the table back)."""
        pyiceberg = _import_pyiceberg()
        if self.warehouse is not None:
            os.makedirs(self.warehouse, exist_ok=True)
            from pyiceberg.catalog.sql import SqlCatalog
            from sqlalchemy.exc import OperationalError

            for attempt in range(10):  # writers of several tasks create its tables at once
                try:
                    return SqlCatalog(
                        self.catalog_name,
                        uri=f"sqlite:///{self.warehouse}/catalog.db",
                        warehouse=f"file://{self.warehouse}",
                    )
                except OperationalError:
                    if attempt == 9:
                        raise
                    time.sleep(0.05 * (attempt + 1))
        return pyiceberg.catalog.load_catalog(self.catalog_name, **self.catalog_props)

    def open(self, ctx: SinkContext) -> IcebergWriter:
        return IcebergWriter(self, ctx.writer_id, ctx.step)

    def describe(self) -> str:
        parts = ", ".join(c if t == "identity" else f"{t}({c})" for c, t in self.partition_by)
        return f"IcebergSink {self.table}" + (f" (partitioned by {parts})" if parts else "")


def writer_positions(table: Any, writer_id: str) -> dict[str, int]:
    """The input positions of ``writer_id``'s latest snapshot in ``table`` (a pyiceberg
    table), walking back from the current snapshot; ``{}`` if it has none."""
    key = SUMMARY_PREFIX + writer_id
    snap = table.current_snapshot()
    while snap is not None:
        props = snap.summary.additional_properties if snap.summary is not None else {}
        if key in props:
            return {str(k): int(v) for k, v in json.loads(props[key]).items()}
        parent = snap.parent_snapshot_id
        snap = None if parent is None else table.metadata.snapshot_by_id(parent)
    return {}


class IcebergWriter(SinkWriter):
    """One task's writer: buffers rows, appends them as one snapshot at ``prepare``."""

    def __init__(self, sink: IcebergSink, writer_id: str, step: str) -> None:
        self.sink, self.writer_id, self.step = sink, writer_id, step
        self._ice = _import_pyiceberg()
        self._catalog: Any = None
        self._table: Any = None
        self._rows: list[dict[str, Any]] = []
        self.rows_written = 0
        self.snapshots = 0
        self.tombstones_skipped = 0

    def _catalog_(self) -> Any:
        if self._catalog is None:
            self._catalog = self.sink.load_catalog()
        return self._catalog

    def _load(self) -> Any:
        from pyiceberg.exceptions import NoSuchTableError

        try:
            self._table = self._catalog_().load_table(self.sink.table)
        except NoSuchTableError:
            self._table = None
        return self._table

    def recover(self) -> Mapping[str, int]:
        """The input positions the table holds for this writer (its latest snapshot)."""
        self._rows = []
        table = self._load()
        return {} if table is None else writer_positions(table, self.writer_id)

    def write(self, batch: SinkBatch) -> None:
        kc, tc = self.sink.key_column, self.sink.timestamp_column
        out = self._rows
        for k, v, ts, _h, _o in batch.raw:  # (tuples: no SinkRecord per record)
            if v is None:
                self.tombstones_skipped += 1
                continue
            row = dict(v) if isinstance(v, Mapping) else {"value": v}
            if kc is not None:
                row[kc] = k
            if tc is not None:
                row[tc] = ts
            out.append(row)

    def prepare(self, positions: Mapping[str, int]) -> None:
        """Append the buffered rows as one snapshot recording ``positions``."""
        if not self._rows:
            return
        data = self._arrow(self._rows)
        table = self._ensure_table(data.schema)
        data = self._conform(table, data)
        props = {SUMMARY_PREFIX + self.writer_id: json.dumps(dict(positions), sort_keys=True)}
        commit_failed = self._ice.exceptions.CommitFailedException
        for attempt in range(10):  # (pyiceberg retries a lost race too; this is the backstop)
            try:
                table.append(data, snapshot_properties=props)
                break
            except commit_failed:
                if attempt == 9:
                    raise
                time.sleep(0.05 * (attempt + 1))
                table = self._load()
        self.rows_written += data.num_rows
        self.snapshots += 1
        self._rows = []

    def publish(self) -> None:
        """Nothing left to do: the snapshot ``prepare`` committed holds the rows and the
        positions together (see the module docstring)."""
        return None

    def abort(self) -> None:
        self._rows = []

    def close(self) -> None:
        self._rows = []
        self._table = self._catalog = None

    # -- helpers ------------------------------------------------------------------------------
    def _arrow(self, rows: list[dict[str, Any]]) -> pa.Table:
        schema = self.sink.schema
        try:
            data = pa.Table.from_pylist(rows, schema=schema)
            if schema is not None:  # fields outside the given schema: typed from the values
                known = set(schema.names)
                extra = list(dict.fromkeys(k for r in rows for k in r if k not in known))
                if extra:
                    more = pa.Table.from_pylist([{k: r.get(k) for k in extra} for r in rows])
                    for field in more.schema:
                        data = data.append_column(field, more.column(field.name))
            return data
        except (pa.ArrowException, TypeError, ValueError) as e:
            raise ProcessingError(f"rows do not fit one Arrow schema: {e}", step=self.step) from e

    def _ensure_table(self, schema: pa.Schema) -> Any:
        table = self._load()  # fresh: other writers may have evolved the schema
        if table is not None:
            return table
        cat, name = self._catalog_(), self.sink.table
        namespace = name.rsplit(".", 1)[0]
        try:
            cat.create_namespace(namespace)
        except Exception:  # exists; or the SQL catalog's IntegrityError when created meanwhile
            if not cat.namespace_exists(namespace):
                raise
        fields = [f for f in schema if not pa.types.is_null(f.type)]  # no type for all-null
        missing = [c for c, _t in self.sink.partition_by if c not in schema.names]
        if missing:
            raise ProcessingError(
                f"partition columns {missing} are not in the rows", step=self.step
            )
        try:
            txn = cat.create_table_transaction(name, schema=pa.schema(fields))
            if self.sink.partition_by:
                parse = self._ice.transforms.parse_transform
                with txn.update_spec() as spec:
                    for col, transform in self.sink.partition_by:
                        label = col if transform == "identity" else f"{col}_{transform}"
                        spec.add_field(
                            col, parse(transform), label.replace("[", "").replace("]", "")
                        )
            txn.commit_transaction()
        except Exception:  # TableAlreadyExistsError, CommitFailedException, IntegrityError
            if self._load() is None:  # not another writer creating it at the same time
                raise
        return self._load()

    def _evolve(self, table: Any, new: pa.Schema) -> None:
        commit_failed = self._ice.exceptions.CommitFailedException
        for attempt in range(10):  # another writer may evolve the schema at the same time
            try:
                with table.update_schema() as update:
                    update.union_by_name(new)
                return
            except commit_failed:
                if attempt == 9:
                    raise
                time.sleep(0.05 * (attempt + 1))
                table = self._load()

    def _conform(self, table: Any, data: pa.Table) -> pa.Table:
        """``data`` with the table's columns and types (new columns added to the table)."""
        target = table.schema().as_arrow()
        new = [
            f for f in data.schema if f.name not in target.names and not pa.types.is_null(f.type)
        ]
        if new:
            if not self.sink.add_columns:
                raise ProcessingError(
                    f"rows have columns {[f.name for f in new]} that table {self.sink.table} lacks",
                    step=self.step,
                )
            self._evolve(table, pa.schema(new))
            table = self._load()
            target = table.schema().as_arrow()
        cols = []
        for field in target:
            if field.name in data.schema.names:
                col = data.column(field.name)
                try:
                    cols.append(col.cast(field.type) if col.type != field.type else col)
                except (pa.ArrowException, ValueError) as e:
                    raise ProcessingError(
                        f"column {field.name!r} ({col.type}) does not fit the table's"
                        f" {field.type}: {e}",
                        step=self.step,
                    ) from e
            else:
                cols.append(pa.nulls(data.num_rows, field.type))
        return pa.Table.from_arrays(cols, schema=target)


__all__ = ["SUMMARY_PREFIX", "IcebergSink", "IcebergWriter", "writer_positions"]
