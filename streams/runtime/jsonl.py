"""JSON-lines input files, as ``streams run --input`` and ``run_bounded`` read them.

A line is a record's value, or an envelope ``{"key": ..., "value": ..., "timestamp": ...}``:
an object whose keys are ``value`` and only ``key``/``timestamp`` beside it (an object with any
other field is a value, so a record that happens to have a ``value`` field is not taken
apart). Without a timestamp a record's is its line's index. Blank lines are skipped.

A line that is not JSON follows the source's error policy: ``fail`` raises
:class:`~streams.core.errors.StreamsError` naming the file and line; otherwise the line comes
back as a :class:`BadLine` with its bytes, for the source's decoder to skip (counted) or
dead-letter as it is.

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "in.jsonl")
>>> _ = open(path, "w").write('{"n": 1}\\n{"key": "k", "value": {"n": 2}}\\nnot json\\n')
>>> list(read_jsonl(path, on_error="skip"))
[(None, {'n': 1}, 0), ('k', {'n': 2}, 1), BadLine(raw=b'not json', line=2)]
>>> try:
...     list(read_jsonl(path, on_error="fail", what="--input"))
... except StreamsError as e:
...     print(str(e).replace(path, "in.jsonl")[:34])
--input in.jsonl, line 3: not JSON
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgspec

from streams.core.errors import StreamsError

_ENVELOPE = frozenset({"key", "value", "timestamp"})


@dataclass(frozen=True)
class BadLine:
    """A line that is not JSON: its bytes (without the line end) and its 0-based index."""

    raw: bytes
    line: int


Record = tuple[Any, Any, int] | BadLine


def read_jsonl(path: str, *, on_error: str = "fail", what: str = "input") -> Iterator[Record]:
    """``(key, value, timestamp)`` per line of ``path``, or a :class:`BadLine` (see above);
    ``what`` names the file's role in an error (``"--input"``)."""
    for batch in JsonlReader(path, on_error=on_error, what=what).batches(10_000):
        yield from batch


class JsonlReader:
    """:func:`read_jsonl` in batches, knowing how far into the file they are (progress): the
    file is read as the batches are asked for, so memory holds one batch, not the file.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "in.jsonl")
    >>> _ = open(path, "w").write('{"n": 1}\\n{"n": 2}\\n{"n": 3}\\n')
    >>> r = JsonlReader(path)
    >>> [(len(b), r.bytes_read) for b in r.batches(2)], r.size
    ([(2, 18), (1, 27)], 27)
    """

    def __init__(self, path: str, *, on_error: str = "fail", what: str = "input") -> None:
        self.path = path
        self.on_error = on_error
        self.what = what
        self.size = os.path.getsize(path)  # (the total of a progress report)
        self.bytes_read = 0

    def batches(self, size: int) -> Iterator[list[Record]]:
        """Lists of up to ``size`` records, in file order."""
        batch: list[Record] = []
        for rec in self._records():
            batch.append(rec)
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch

    def _records(self) -> Iterator[Record]:
        path, what, on_error = self.path, self.what, self.on_error
        dec = msgspec.json.Decoder()
        read = self.bytes_read
        with open(path, "rb") as f:
            for i, line in enumerate(f):
                read += len(line)
                self.bytes_read = read
                if not line.strip():
                    continue
                try:
                    rec = dec.decode(line)
                except msgspec.DecodeError as e:
                    if on_error == "fail":
                        raise StreamsError(
                            f"{what} {path}, line {i + 1}: not JSON ({e}); the source fails on bad "
                            "records (on_error='skip' or 'dead_letter' goes on)"
                        ) from None
                    yield BadLine(line.rstrip(b"\r\n"), i)
                    continue
                if isinstance(rec, dict) and "value" in rec and rec.keys() <= _ENVELOPE:
                    yield rec.get("key"), rec["value"], rec.get("timestamp", i)
                else:
                    yield None, rec, i


__all__ = ["BadLine", "JsonlReader", "Record", "read_jsonl"]
