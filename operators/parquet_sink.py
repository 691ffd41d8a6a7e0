"""A Parquet file sink whose files become visible only after their records' offsets commit.

The protocol is Flink's two-phase file sink, with the task's commit as the checkpoint:

1. ``process`` buffers rows in memory.
2. ``pre_commit`` (before the task's changelog and offsets are written) stages the buffered rows
   as an Arrow IPC segment under ``{path}/_staging/``. When a file is due (``rotate_rows``
   staged rows, ``rotate_every_ms`` since the first staged row, end of input, or at every commit
   when neither is set), the staged segments are written as hidden ``.{name}.tmp`` Parquet files
   in their final directories. The segment list and the files to publish go into the sink's
   store, so they commit *atomically with the offsets* of the records they hold.
3. ``post_commit`` (the commit is durable) renames each temporary file to its final name
   (atomic on one filesystem) and deletes the consumed segments.
4. ``recover`` (task start, after the store is restored) finishes what the last committed state
   says (publishes pending files) and deletes everything this task wrote that no commit covers:
   those records are processed again from the committed offsets. A file name carries the
   committed sequence number, so a re-run rewrites the same names.

Readers (``pyarrow.dataset`` / ``pq.read_table(path)``) skip names starting with ``.`` or ``_``,
so staged segments and temporary files are never read. Partition directories are Hive style
(``col=value``). The path must be reachable by whichever worker owns the partition next (a
shared filesystem) for state to move between workers, as for Flink's file sink.

>>> import tempfile, pyarrow.parquet as pq
>>> from streams.plan import nodes as plan
>>> d = tempfile.mkdtemp()
>>> node = plan.ParquetSink(step="out", parents=(), path=d, store=plan.StoreSpec("out"))
>>> sink = ParquetSinkProcessor(node, {}, partition=0, clock=lambda: 0)
>>> sink.process([(None, {"x": 1}, 0, (), 0), (None, {"x": 2}, 0, (), 1)])
>>> sink.pre_commit()
>>> pq.read_table(d).num_rows  # written, not yet published
0
>>> sink.post_commit()
>>> pq.read_table(d).to_pylist()
[{'x': 1}, {'x': 2}]
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from operators.base import Rows
from streams.core.errors import ProcessingError
from streams.plan import nodes as plan

_STATE = "state"


def _fresh() -> dict[str, Any]:
    return {"seq": 0, "staged": [], "staged_rows": 0, "first_ms": None, "publish": [], "drop": []}


def _dir_value(v: Any) -> str:
    """A partition value as a directory-name-safe string (Hive style)."""
    return re.sub(r"[/\\\x00]", "_", "__HIVE_DEFAULT_PARTITION__" if v is None else str(v))


class ParquetSinkProcessor:
    """Buffers rows and publishes Parquet files at commits (see the module docstring)."""

    def __init__(
        self,
        node: plan.ParquetSink,
        store: Any,  # an ObjectKV (get/put); a dict in the doctest
        partition: int,
        clock: Callable[[], int],
    ) -> None:
        self.node = node
        self.root = Path(node.path)
        self.prefix = f"{node.step}-{partition:04d}"
        self.staging = self.root / "_staging" / self.prefix
        self._store = store
        self._clock = clock
        self._rows: list[dict[str, Any]] = []
        self._final = False
        self._state: dict[str, Any] = dict(self._get() or _fresh())
        self.files_published = 0

    # -- the store: an ObjectKV (get/put) or, in doctests, a dict ------------------------------
    def _get(self) -> Any:
        return self._store.get(_STATE)

    def _put(self) -> None:
        if isinstance(self._store, dict):
            self._store[_STATE] = dict(self._state)
        else:
            self._store.put(_STATE, dict(self._state))

    # -- records ------------------------------------------------------------------------------
    def process(self, rows: Rows) -> None:
        kc, tc = self.node.key_column, self.node.timestamp_column
        out = self._rows
        for k, v, ts, _h, _o in rows:
            if isinstance(v, Mapping):
                rec = dict(v)
            elif v is None:
                continue  # a tombstone has no row
            else:
                rec = {"value": v}
            if kc is not None:
                rec[kc] = k
            if tc is not None:
                rec[tc] = ts
            out.append(rec)

    def end_of_input(self) -> None:
        """Bounded input ended: the next commit publishes everything staged."""
        self._final = True

    # -- the two phases -----------------------------------------------------------------------
    def pre_commit(self) -> None:
        """Stage buffered rows; write the files that are due as hidden temporaries; record
        both in the store (committed with the offsets)."""
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

    def post_commit(self) -> None:
        """The commit is durable: publish the files it covers, drop consumed segments."""
        st = self._state
        if not st["publish"] and not st["drop"]:
            return
        self._finish(st)
        st["publish"], st["drop"] = [], []
        self._put()  # recorded with the next commit; a crash before that re-runs an idempotent
        # _finish in recover()

    def recover(self) -> None:
        """Task start: complete the last committed state, delete what no commit covers."""
        self._state = st = dict(self._get() or _fresh())
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
        n = self.node
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
                f"step '{self.node.step}': rows do not fit one Parquet schema: {e}"
            ) from e

    def _split(self, table: pa.Table) -> list[tuple[str, pa.Table]]:
        cols = self.node.partition_by
        if not cols:
            return [("", table)]
        missing = [c for c in cols if c not in table.column_names]
        if missing:
            raise ProcessingError(
                f"step '{self.node.step}': partition_by columns {missing} are missing"
            )
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
