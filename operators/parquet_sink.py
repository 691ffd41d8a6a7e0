"""A Parquet file sink whose files become visible only after their records' offsets commit.

The protocol is Flink's two-phase file sink, with the task's commit as the checkpoint:

1. ``process`` buffers rows in memory.
2. ``pre_commit`` (before the task's changelog and offsets are written) stages the buffered rows
   as an Arrow IPC segment under ``{path}/_staging/``. When a file is due (``rotate_rows``
   staged rows, ``rotate_every_ms`` since the first staged row, end of input, or at every commit
   when neither is set), the staged segments are written as hidden ``.{name}.tmp`` Parquet files
   in their final directories. The segment list and the files to publish go into the sink's
   store, so they reach its changelog in the commit of the offsets of the records they hold.
3. ``post_commit`` (the commit is durable) renames each temporary file to its final name
   (atomic on one filesystem) and deletes the consumed segments.
4. ``recover`` (task start, after the store is restored) finishes what the last committed state
   says (publishes pending files) and deletes everything this task wrote that no commit covers:
   those records are processed again from the committed offsets. A file name carries the
   committed sequence number, so a re-run rewrites the same names.

Idempotent under both guarantees. Under exactly-once the store's changelog commits in the
transaction that commits the input offsets, so the restored state never covers more input
than the offsets. Under at-least-once the changelog is flushed *before* the offsets are
committed, and a commit the group refuses (a rebalance) or a crash between the two leaves a
restored state whose files hold records the offsets do not cover: the task re-reads them.
Publishing those files is still right (their records were processed; discarding them instead
would need the committed offsets at recovery, which the sink does not see); processing the
re-read records into new files is what would duplicate them. So the state also records ``upto``, the
task's input position per topic-partition its rows cover (``pre_commit(positions)``), and a
recovered sink *skips the re-read records*: a row whose source offset is below ``upto`` of the
partition still being re-read is already in a staged segment or a file. Once the task reads
past ``upto`` the fence is gone. Each file's Parquet metadata says which input offsets it
covers (``streams.input``: ``{"topic:partition": [first, last]}``), so ranges are auditable;
the ranges of successive files follow each other and never overlap.

The fence is per input partition: the task tells the sink which partition the batch it runs
comes from (``reading``), so a sink fed by several topics (a ``merge``) compares each row's
offset with that partition's ``upto``. Rows a windowed step emits carry the offset of a record
from before (or ``-1``); they follow the at-least-once semantics of that step's state.

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

import json
import os
import re
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from operators.base import Rows
from streams.core.errors import ProcessingError
from streams.core.records import TopicPartition
from streams.plan import nodes as plan

_STATE = "state"


def _fresh() -> dict[str, Any]:
    return {
        "seq": 0,
        "staged": [],
        "staged_rows": 0,
        "first_ms": None,
        "publish": [],
        "drop": [],
        "upto": {},  # "topic:partition" -> input position the staged and written rows cover
        "cut": {},  # "topic:partition" -> input position at the last file cut
    }


def _tp_key(tp: TopicPartition) -> str:
    return f"{tp.topic}:{tp.partition}"


def _key_tp(key: str) -> TopicPartition:
    topic, _, partition = key.rpartition(":")
    return TopicPartition(topic, int(partition))


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
        self._state: dict[str, Any] = {**_fresh(), **(self._get() or {})}
        #: re-read input this sink already holds: partition -> position (see the module doc)
        self._fence: dict[TopicPartition, int] = {}
        self._positions: Mapping[TopicPartition, int] = {}  # the task's, live
        #: the input partition of the batch the task is running (its rows' offsets are its)
        self.reading: TopicPartition | None = None
        self.files_published = 0
        self.replayed_rows = 0  # re-read rows skipped after a recovery

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
        fence = self._retire_fence()
        for k, v, ts, _h, o in rows:
            if fence and 0 <= o < fence:
                self.replayed_rows += 1
                continue  # re-read after a recovery: already staged or written
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

    def _retire_fence(self) -> int:
        """Drop the fence of partitions the task has read past; return the offset below which
        a row is re-read (0: none)."""
        fence = self._fence
        if not fence:
            return 0
        for tp, upto in list(fence.items()):
            if self._positions.get(tp, -1) >= upto:
                del fence[tp]
        if self.reading is not None:
            return fence.get(self.reading, 0)
        return min(fence.values(), default=0)

    def end_of_input(self) -> None:
        """Bounded input ended: the next commit publishes everything staged."""
        self._final = True

    # -- the two phases -----------------------------------------------------------------------
    def pre_commit(self, positions: Mapping[TopicPartition, int] | None = None) -> None:
        """Stage buffered rows; write the files that are due as hidden temporaries; record
        both in the store (committed with the offsets), with the task's input ``positions``
        they cover."""
        st = self._state
        now = self._clock()
        if positions:
            upto = dict(st["upto"])
            for tp, off in positions.items():
                upto[_tp_key(tp)] = max(off, upto.get(_tp_key(tp), off))
            st["upto"] = upto
            self._retire_fence()
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
                for k, off in st["upto"].items()
                if off > st["cut"].get(k, 0)
            }
            table = table.replace_schema_metadata(
                {**(table.schema.metadata or {}), b"streams.input": json.dumps(covers).encode()}
            )
            st["cut"] = dict(st["upto"])
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

    def recover(
        self,
        positions: Mapping[TopicPartition, int] | None = None,
        tables: Collection[str] = (),
    ) -> None:
        """Task start: complete the last committed state, delete what no commit covers, and
        skip the input the state holds when it is read again. ``positions`` is the task's
        (live) input positions; ``tables`` are input topics that are tables (not a source of
        rows)."""
        self._state = st = {**_fresh(), **(self._get() or {})}
        self._rows = []
        self._positions = positions if positions is not None else {}
        fence = {_key_tp(k): off for k, off in st["upto"].items()}
        self._fence = {tp: off for tp, off in fence.items() if tp.topic not in tables}
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
