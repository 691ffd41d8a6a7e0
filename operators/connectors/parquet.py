"""A Parquet file sink, written on the connector API: files become visible only after their
records' offsets commit (``stream.to_parquet(...)`` or ``stream.to_sink(ParquetSink(...))``).

The protocol is Flink's two-phase file sink, with the task's commit as the checkpoint:

1. ``write`` buffers rows in memory.
2. ``prepare`` (before the task's changelog and offsets are written) stages the buffered rows
   as an Arrow IPC segment under ``{path}/_staging/``. When a file is due (``rotate_rows``
   staged rows, ``rotate_every_ms`` since the first staged row, end of input, or at every commit
   when neither is set), the staged segments are written as hidden ``.{name}.tmp`` Parquet files
   in their final directories. The segment list and the files to publish go into the sink's
   state, so they reach its changelog in the commit of the offsets of the records they hold.
3. ``publish`` (the commit is durable) renames each temporary file to its final name (atomic
   on one filesystem) and deletes the consumed segments.
4. ``recover`` (task start, after the state is restored) finishes what the last committed state
   says (publishes pending files) and deletes everything this writer wrote that no commit
   covers: those records are processed again from the committed offsets. A file name carries
   the committed sequence number, so a re-run rewrites the same names.

Idempotent under both guarantees; under at-least-once a restored state may be ahead of the
offsets, and the runtime's fence (:mod:`operators.connectors.api`) keeps the re-read records
out of new files. Each file's Parquet metadata says which input offsets it covers
(``streams.input``: ``{"topic:partition": [first, last]}``), so ranges are auditable; the
ranges of successive files follow each other and never overlap.

Readers (``pyarrow.dataset`` / ``pq.read_table(path)``) skip names starting with ``.`` or ``_``,
so staged segments and temporary files are never read. Partition directories are Hive style
(``col=value``). The path must be reachable by whichever worker owns the partition next (a
shared filesystem) for state to move between workers, as for Flink's file sink.

>>> import tempfile, pyarrow.parquet as pq
>>> from operators.connectors.api import SinkBatch, SinkContext
>>> from operators.connectors.runtime import DictState
>>> d = tempfile.mkdtemp()
>>> ctx = SinkContext("app", "out", 0, "at_least_once", DictState({}), lambda: 0)
>>> w = ParquetSink(d).open(ctx)
>>> w.write(SinkBatch([(None, {"x": 1}, 0, (), 0), (None, {"x": 2}, 0, (), 1)]))
>>> w.prepare({"in:0": 2})
>>> pq.read_table(d).num_rows  # written, not yet published
0
>>> w.publish()
>>> pq.read_table(d).to_pylist()
[{'x': 1}, {'x': 2}]
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from operators.connectors.api import Sink, SinkBatch, SinkContext, SinkWriter
from streams.core.errors import ProcessingError, TopologyError

_STATE = "state"


def _fresh() -> dict[str, Any]:
    return {
        "seq": 0,
        "staged": [],
        "staged_rows": 0,
        "first_ms": None,
        "publish": [],
        "drop": [],
        "cut": {},  # "topic:partition" -> input position at the last file cut
    }


def _dir_value(v: Any) -> str:
    """A partition value as a directory-name-safe string (Hive style)."""
    return re.sub(r"[/\\\x00]", "_", "__HIVE_DEFAULT_PARTITION__" if v is None else str(v))


class ParquetSink(Sink):
    """Parquet files under ``path`` (mapping values; others as a ``value`` column), in
    Hive-style ``col=value`` directories for ``partition_by``, visible once their records'
    offsets commit. A file is cut every ``rotate_rows`` rows or ``rotate_every`` (seconds or a
    ``timedelta``, checked at commits); with neither, at every commit. ``key_column`` /
    ``timestamp_column`` add the record's key / timestamp as columns."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        partition_by: Iterable[str] = (),
        rotate_every: float | timedelta | None = None,
        rotate_rows: int | None = None,
        key_column: str | None = None,
        timestamp_column: str | None = None,
    ) -> None:
        self.path = os.fspath(path)
        if not isinstance(self.path, str) or not self.path:
            raise TopologyError("a Parquet sink needs a path")
        every = (
            rotate_every.total_seconds() if isinstance(rotate_every, timedelta) else rotate_every
        )
        if (every is not None and every <= 0) or (rotate_rows is not None and rotate_rows <= 0):
            raise TopologyError(
                f"Parquet sink {self.path}: rotate_every and rotate_rows must be positive"
            )
        self.partition_by = tuple(partition_by)
        self.rotate_every_ms = None if every is None else int(every * 1000)
        self.rotate_rows = rotate_rows
        self.key_column = key_column
        self.timestamp_column = timestamp_column
        base = re.sub(r"[^a-z0-9-]+", "-", os.path.basename(self.path.rstrip("/")).lower())
        self.default_name = f"parquet-{base.strip('-') or 'out'}"

    def reads(self) -> frozenset[str]:
        return frozenset(self.partition_by)

    def open(self, ctx: SinkContext) -> ParquetWriter:
        return ParquetWriter(self, ctx)

    def describe(self) -> str:
        by = f" partition_by={list(self.partition_by)}" if self.partition_by else ""
        return f"parquet path={self.path}{by}"


class ParquetWriter(SinkWriter):
    """Buffers rows and publishes Parquet files at commits (see the module docstring)."""

    def __init__(self, sink: ParquetSink, ctx: SinkContext) -> None:
        self.sink = sink
        self.step = ctx.step
        self.root = Path(sink.path)
        self.prefix = f"{ctx.step}-{ctx.partition:04d}"
        self.staging = self.root / "_staging" / self.prefix
        self._store = ctx.state
        self._clock = ctx.clock
        self._rows: list[dict[str, Any]] = []
        self._final = False
        self._state: dict[str, Any] = _fresh()
        self.files_published = 0

    def _put(self) -> None:
        self._store.put(_STATE, dict(self._state))

    # -- records ------------------------------------------------------------------------------
    def write(self, batch: SinkBatch) -> None:
        self._rows += batch.rows(
            key_column=self.sink.key_column, timestamp_column=self.sink.timestamp_column
        )

    def end_of_input(self) -> None:
        """Bounded input ended: the next commit publishes everything staged."""
        self._final = True

    # -- the two phases -----------------------------------------------------------------------
    def prepare(self, positions: Mapping[str, int]) -> None:
        """Stage buffered rows; write the files that are due as hidden temporaries; record
        both in the state (committed with the offsets)."""
        st = self._state
        now = self._clock()
        if self._rows:
            table = self._table(self._rows)
            self._rows = []
            name = f"{st['seq']:010d}.arrow"
            st["seq"] += 1
            self.staging.mkdir(parents=True, exist_ok=True)
            _write_atomic(self.staging / name, lambda f: _write_ipc(table, f))
            st["staged"] = [*st["staged"], name]
            st["staged_rows"] += table.num_rows
            if st["first_ms"] is None:
                st["first_ms"] = now
        if st["staged"] and self._due(st, now):
            table = _concat([_read_ipc(self.staging / n) for n in st["staged"]])
            covers = {
                k: [st["cut"].get(k, 0), off - 1]
                for k, off in positions.items()
                if off > st["cut"].get(k, 0)
            }
            table = table.replace_schema_metadata(
                {**(table.schema.metadata or {}), b"streams.input": json.dumps(covers).encode()}
            )
            st["cut"] = {**st["cut"], **positions}
            publish = []
            for rel_dir, part in self._split(table):
                final = f"{self.prefix}-{st['seq']:010d}.parquet"
                st["seq"] += 1
                directory = self.root / rel_dir
                directory.mkdir(parents=True, exist_ok=True)
                tmp = directory / f".{final}.tmp"
                _write_atomic(tmp, _parquet_writer(part))
                publish.append([str(tmp), str(directory / final)])
            st["publish"] = [*st["publish"], *publish]
            st["drop"] = [*st["drop"], *st["staged"]]
            st["staged"], st["staged_rows"], st["first_ms"] = [], 0, None
        self._put()

    def publish(self) -> None:
        """The commit is durable: publish the files it covers, drop consumed segments."""
        st = self._state
        if not st["publish"] and not st["drop"]:
            return
        self._finish(st)
        st["publish"], st["drop"] = [], []
        self._put()  # recorded with the next commit; a crash before that re-runs an idempotent
        # _finish in recover()

    def abort(self) -> None:
        self._rows = []  # (staged segments and files: the next owner's recover() decides)

    def recover(self) -> Mapping[str, int]:
        """Task start: complete the last committed state, delete what no commit covers."""
        self._state = st = {**_fresh(), **(self._store.get(_STATE) or {})}
        self._rows = []
        self._finish(st)
        st["publish"], st["drop"] = [], []
        keep = set(st["staged"])
        if self.staging.is_dir():
            for f in self.staging.iterdir():
                if f.name not in keep:
                    f.unlink(missing_ok=True)
        if self.root.is_dir():
            for f in self.root.rglob(f".{self.prefix}-*.parquet.tmp*"):
                f.unlink(missing_ok=True)
        return {}

    # -- helpers ------------------------------------------------------------------------------
    def _finish(self, st: dict[str, Any]) -> None:
        for tmp, final in st["publish"]:
            if os.path.exists(tmp):
                os.replace(tmp, final)
                _fsync_dir(os.path.dirname(final))
                self.files_published += 1
        for name in st["drop"]:
            (self.staging / name).unlink(missing_ok=True)

    def _due(self, st: dict[str, Any], now: int) -> bool:
        n = self.sink
        if self._final or (n.rotate_rows is None and n.rotate_every_ms is None):
            return True
        if n.rotate_rows is not None and st["staged_rows"] >= n.rotate_rows:
            return True
        return n.rotate_every_ms is not None and now - st["first_ms"] >= n.rotate_every_ms

    def _table(self, rows: list[dict[str, Any]]) -> pa.Table:
        try:
            return pa.Table.from_pylist(rows)
        except (pa.ArrowException, TypeError, ValueError) as e:
            raise ProcessingError(
                f"step '{self.step}': rows do not fit one Parquet schema: {e}"
            ) from e

    def _split(self, table: pa.Table) -> list[tuple[str, pa.Table]]:
        cols = self.sink.partition_by
        if not cols:
            return [("", table)]
        missing = [c for c in cols if c not in table.column_names]
        if missing:
            raise ProcessingError(f"step '{self.step}': partition_by columns {missing} are missing")
        keys = list(zip(*(table.column(c).to_pylist() for c in cols), strict=True))
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, k in enumerate(keys):
            groups.setdefault(k, []).append(i)
        rest = table.drop_columns(list(cols))
        return [
            (
                os.path.join(*(f"{c}={_dir_value(v)}" for c, v in zip(cols, k, strict=True))),
                rest.take(pa.array(idx, pa.int64())),
            )
            for k, idx in groups.items()
        ]


def _parquet_writer(table: pa.Table) -> Callable[[Any], None]:
    def write(f: Any) -> None:
        pq.write_table(table, f)

    return write


def _concat(tables: list[pa.Table]) -> pa.Table:
    return pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]


def _write_ipc(table: pa.Table, f: Any) -> None:
    with pa.ipc.new_file(f, table.schema) as w:
        w.write_table(table)


def _read_ipc(path: Path) -> pa.Table:
    with pa.memory_map(str(path)) as src:
        return pa.ipc.open_file(src).read_all()


def _write_atomic(path: Path, write: Callable[[Any], None]) -> None:
    """Write to ``path`` through a sibling temporary, fsync, rename: never a torn file."""
    part = path.with_name(path.name + ".partial")
    with open(part, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(part, path)
    _fsync_dir(str(path.parent))


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["ParquetSink", "ParquetWriter"]
