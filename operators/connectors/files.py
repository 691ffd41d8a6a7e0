"""File sources: JSON lines, CSV and Parquet files, one file or a directory of them, read to
the end (a backfill) or followed as new files arrive (``follow=True``).

A directory is read file by file in name order (name files so that order is arrival order,
e.g. ``2024-05-01T10-00.jsonl``); names starting with ``.`` or ``_`` are skipped, so a writer
that writes ``.name.tmp`` and renames it when complete never shows a half-written file. Files
are immutable once visible: a file is finished when the source reaches its end, and what is
appended later is not read. The position (kept in the task's checkpoint, see
:mod:`operators.connectors.api`) is the file being read, the offset in it (a byte offset for
JSON lines, a row for CSV and Parquet) and the names of the files finished, so a restart
resumes in the middle of a file and never reads a finished file again, whatever arrives later.

Records have no key and, unless the source step gives ``timestamp=``, their file's
modification time as timestamp (when it arrived; the same when read again after a restart).
JSON-lines values are decoded by the step's serde, so a line that is not JSON follows the
step's ``on_error`` (skipped or dead-lettered with its bytes, or failing with the file's name);
CSV and Parquet files arrive as Arrow batches (columnar chains run on them as they are).

>>> import os, tempfile
>>> d = tempfile.mkdtemp()
>>> for name, lines in [("a.jsonl", ['{"n": 1}', '{"n": 2}']), ("b.jsonl", ['{"n": 3}'])]:
...     _ = open(os.path.join(d, name), "w").write("\\n".join(lines) + "\\n")
>>> r = JsonLinesSource(d).open(None, None)  # (the runtime passes a SourceContext)
>>> b = r.poll(2); [x[1] for x in b.records], b.position["file"], r.exhausted
([b'{"n": 1}', b'{"n": 2}'], 'a.jsonl', False)
>>> r = JsonLinesSource(d).open(None, b.position)  # a restart resumes after the 2nd record
>>> b = r.poll(10); [x[1] for x in b.records], b.position["done"], r.poll(10), r.exhausted
([b'{"n": 3}'], ['a.jsonl', 'b.jsonl'], None, True)
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Mapping
from typing import Any

from operators.connectors.api import Headers, Source, SourceBatch, SourceContext, SourceReader
from streams.core.errors import StreamsError
from streams.core.serde import JSON, Serde


class FileSource(Source):
    """The file sources' common options: ``path`` (a file or a directory), ``follow`` (keep
    polling the directory for new files; the runtime polls every ``poll_interval`` seconds
    when there is nothing new) and ``pattern`` (a glob on file names in the directory)."""

    pattern: str = "*"
    default_name = "source-files"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        follow: bool = False,
        pattern: str | None = None,
        poll_interval: float = 1.0,
    ) -> None:
        self.path = os.fspath(path)
        if not self.path:
            raise StreamsError(f"{type(self).__name__} needs a path")
        if poll_interval <= 0:
            raise StreamsError(f"{type(self).__name__}: poll_interval must be positive")
        self.follow = follow
        self.bounded = not follow
        if pattern is not None:
            self.pattern = pattern
        self.poll_interval = poll_interval

    def describe(self) -> str:
        return f"{type(self).__name__} path={self.path}" + (" follow" if self.follow else "")

    def open(self, ctx: SourceContext | None, position: Any) -> SourceReader:
        return _READERS[type(self)](self, position)


class JsonLinesSource(FileSource):
    """``.jsonl`` files (by default ``*.jsonl``, ``*.ndjson``, ``*.json``): one value per line,
    decoded by the step's value serde (JSON); blank lines are skipped."""

    pattern = "*.jsonl|*.ndjson|*.json"
    default_name = "source-jsonl"
    value_serde: Serde = JSON


class CsvSource(FileSource):
    """``.csv`` files with a header row, as Arrow batches (one column per CSV column).
    ``column_types`` (``{"amount": pyarrow.float64()}``) fixes a column's type; the others are
    inferred from the first block of each file, so declare the ones that could be read
    differently after a restart in the middle of a file (all-null blocks, numbers as text)."""

    pattern = "*.csv"
    default_name = "source-csv"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        follow: bool = False,
        pattern: str | None = None,
        poll_interval: float = 1.0,
        column_types: Mapping[str, Any] | None = None,
        delimiter: str = ",",
    ) -> None:
        super().__init__(path, follow=follow, pattern=pattern, poll_interval=poll_interval)
        self.column_types = dict(column_types or {})
        self.delimiter = delimiter


class ParquetSource(FileSource):
    """``.parquet`` files, as Arrow batches (their columns are the values' fields)."""

    pattern = "*.parquet"
    default_name = "source-parquet"


# -- readers -----------------------------------------------------------------------------------
class _FileReader(SourceReader):
    """Walks the files of a source in name order; a subclass reads records from one."""

    def __init__(self, source: FileSource, position: Any) -> None:
        pos = position or {}
        self.source = source
        self.done: set[str] = set(pos.get("done", ()))
        self.current: str | None = pos.get("file")
        self.offset: int = int(pos.get("offset", 0))
        self._exhausted = False
        self._open: Any = None  # the subclass's handle on the current file

    # -- files -----------------------------------------------------------------------------
    def _names(self) -> list[str]:
        path = self.source.path
        if os.path.isfile(path):
            return [os.path.basename(path)]
        if not os.path.isdir(path):
            if self.source.follow:
                return []  # (not created yet)
            raise StreamsError(f"{self.source.describe()}: no such file or directory")
        pats = self.source.pattern.split("|")
        return sorted(
            n
            for n in os.listdir(path)
            if n[0] not in "._"
            and any(fnmatch.fnmatch(n, p) for p in pats)
            and os.path.isfile(os.path.join(path, n))
        )

    def _file(self, name: str) -> str:
        path = self.source.path
        return path if os.path.isfile(path) else os.path.join(path, name)

    def poll(self, max_records: int) -> SourceBatch | None:
        while True:
            if self.current is None:
                pending = [n for n in self._names() if n not in self.done]
                if not pending:
                    self._exhausted = not self.source.follow
                    return None
                self.current, self.offset = pending[0], 0
            name = self.current
            try:
                batch, offset, end = self._read(self._file(name), self.offset, max_records)
            except OSError as e:
                raise StreamsError(f"{self.source.describe()}: cannot read {name}: {e}") from e
            self.offset = offset
            if end:
                self._close_file()
                self.done.add(name)
                self.current, self.offset = None, 0
            if batch is not None:
                batch.position = self._position()
                batch.origin = name
                return batch

    def _position(self) -> dict[str, Any]:
        return {"file": self.current, "offset": self.offset, "done": sorted(self.done)}

    @property
    def exhausted(self) -> bool:
        return self._exhausted

    def _read(self, path: str, offset: int, n: int) -> tuple[SourceBatch | None, int, bool]:
        """Up to ``n`` records of ``path`` from ``offset``: the batch (``None``: none), the
        offset after it and whether the file is finished."""
        raise NotImplementedError

    def _close_file(self) -> None:
        if self._open is not None:
            close = getattr(self._open[0], "close", None)
            if close is not None:
                close()
            self._open = None

    def close(self) -> None:
        self._close_file()


class _JsonLinesReader(_FileReader):
    def _read(self, path: str, offset: int, n: int) -> tuple[SourceBatch | None, int, bool]:
        if self._open is None or self._open[1] != path:
            self._close_file()
            f = open(path, "rb")  # noqa: SIM115 - kept open across polls, closed in _close_file
            self._open = (f, path)
        f = self._open[0]
        mtime = _mtime_ms(f.fileno())
        f.seek(offset)
        records: list[tuple[bytes | None, bytes | None, int | None, Headers]] = []
        while len(records) < n:
            line = f.readline()
            if not line:
                return (SourceBatch(None, records) if records else None), f.tell(), True
            line = line.rstrip(b"\r\n")
            if line.strip():
                records.append((None, line, mtime, ()))
        return SourceBatch(None, records), f.tell(), False


class _ArrowReader(_FileReader):
    """Slices a file's Arrow batches into batches of at most ``n`` rows; the offset is the row."""

    def _batches(self, path: str, offset: int, n: int) -> Any:
        raise NotImplementedError

    def _read(self, path: str, offset: int, n: int) -> tuple[SourceBatch | None, int, bool]:
        if self._open is None or self._open[1] != path:
            self._close_file()
            it = _Closing(self._batches(path, offset, n))
            self._open = [it, path, None, _mtime_ms(path)]  # batches, path, rest, mtime
        state = self._open
        rb = state[2]
        while rb is None or rb.num_rows == 0:
            rb = next(state[0].it, None)
            if rb is None:
                return None, offset, True
        out, state[2] = rb.slice(0, n), rb.slice(n)
        ts = [state[3]] * out.num_rows
        return SourceBatch(None, arrow=out, timestamps=ts), offset + out.num_rows, False


class _Closing:
    def __init__(self, it: Any) -> None:
        self.it = iter(it)

    def close(self) -> None:
        close = getattr(self.it, "close", None)
        if close is not None:
            close()


class _CsvReader(_ArrowReader):
    source: CsvSource

    def _batches(self, path: str, offset: int, n: int) -> Any:
        import pyarrow.csv as pcsv  # type: ignore[import-untyped]

        src = self.source
        return pcsv.open_csv(
            path,
            read_options=pcsv.ReadOptions(skip_rows_after_names=offset),
            parse_options=pcsv.ParseOptions(delimiter=src.delimiter),
            convert_options=pcsv.ConvertOptions(column_types=src.column_types or None),
        )


class _ParquetReader(_ArrowReader):
    def _batches(self, path: str, offset: int, n: int) -> Any:
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        f = pq.ParquetFile(path)
        meta, first, skip = f.metadata, 0, offset
        while first < meta.num_row_groups and skip >= meta.row_group(first).num_rows:
            skip -= meta.row_group(first).num_rows
            first += 1
        groups = list(range(first, meta.num_row_groups))
        if not groups:
            return iter(())
        it = f.iter_batches(batch_size=max(n, 1), row_groups=groups)
        if not skip:
            return it
        return _skip(it, skip)


def _mtime_ms(f: str | int) -> int:
    return int(os.stat(f).st_mtime * 1000)


def _skip(it: Any, rows: int) -> Any:
    for rb in it:
        if rows >= rb.num_rows:
            rows -= rb.num_rows
            continue
        yield rb.slice(rows)
        rows = 0


_READERS: dict[type[FileSource], type[_FileReader]] = {
    FileSource: _JsonLinesReader,
    JsonLinesSource: _JsonLinesReader,
    CsvSource: _CsvReader,
    ParquetSource: _ParquetReader,
}

__all__ = ["CsvSource", "FileSource", "JsonLinesSource", "ParquetSource"]
