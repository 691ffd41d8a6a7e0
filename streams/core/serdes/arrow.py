"""Arrow IPC values: one message holds an Arrow IPC stream, and each of its rows is a record.

Producers that already hold columnar data (a Parquet export, a pandas or Polars frame, another
Arrow engine) send a batch of rows as one message. A source with ``value=ARROW_IPC`` decodes a
fetched batch of such messages straight into one columnar batch (no Python dicts unless a step
needs rows): each row becomes a record with its message's key, timestamp (or the source's
``timestamp=`` expression over the row), headers and offset. Row-wise, ``deserialize`` gives the
message's rows as a list of dicts.

``serialize`` takes a ``pyarrow.Table`` or ``RecordBatch``, a list of dicts, or one dict (a
one-row stream), so a sink with ``value=ARROW_IPC`` writes one message per record value.

>>> data = ARROW_IPC.serialize([{"user": "ann", "n": 3}, {"user": "bo", "n": 5}])
>>> ARROW_IPC.deserialize(data)
[{'user': 'ann', 'n': 3}, {'user': 'bo', 'n': 5}]
>>> ARROW_IPC.table(data).num_rows
2
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]

from streams.core.errors import SerializationError


class ArrowIpcSerde:
    """See the module doc; use the :data:`ARROW_IPC` instance."""

    @property
    def name(self) -> str:
        return "arrow_ipc"

    def serialize(self, obj: Any) -> bytes | None:
        if obj is None:
            return None
        try:
            if isinstance(obj, pa.RecordBatch):
                obj = pa.Table.from_batches([obj])
            elif isinstance(obj, dict):
                obj = pa.Table.from_pylist([obj])
            elif isinstance(obj, list):
                obj = pa.Table.from_pylist(obj)
            if not isinstance(obj, pa.Table):
                raise TypeError(f"a table, a record batch, a dict or a list of dicts, not {obj!r}")
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, obj.schema) as w:
                w.write_table(obj)
            out: bytes = sink.getvalue().to_pybytes()
            return out
        except (TypeError, pa.ArrowException) as e:
            raise SerializationError(f"could not serialize as Arrow IPC: {e}") from e

    def table(self, data: bytes) -> Any:
        """The message's rows as a ``pyarrow.Table``."""
        try:
            return pa.ipc.open_stream(data).read_all()
        except (pa.ArrowException, TypeError) as e:
            raise SerializationError(f"not an Arrow IPC stream: {e}") from e

    def deserialize(self, data: bytes | None) -> Any:
        if data is None:
            return None
        return self.table(data).to_pylist()

    def __repr__(self) -> str:
        return "ARROW_IPC"


ARROW_IPC = ArrowIpcSerde()
"""Arrow IPC stream values (see the module doc)."""

__all__ = ["ARROW_IPC", "ArrowIpcSerde"]
