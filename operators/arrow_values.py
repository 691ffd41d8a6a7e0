"""Sources with Arrow IPC values (:data:`streams.serdes.ARROW_IPC`): a fetched batch of
messages, each an IPC stream of rows, becomes one :class:`~operators.columnar.ColumnarBatch`.

Each row is a record with its message's key, timestamp, headers and offset (a ``timestamp=``
expression of the source runs on the columns instead). Messages whose schemas differ are
unified where Arrow can (a missing column reads as null, ``promote_options="default"``);
otherwise each message is its own batch. A message that is not an IPC stream is a
:class:`~streams.errors.SerializationError` naming its offset, handled by the source's error
policy like any undecodable value (the dead-letter topic gets its original bytes).

>>> from streams.serde import STR
>>> from streams.serdes import ARROW_IPC
>>> v = ARROW_IPC.serialize([{"n": 1}, {"n": 2}])
>>> d = ArrowValuesDecoder(STR, None, "t", 0)
>>> d.decode([(b"k", v, 7, (), 40)]).to_rows()
[('k', {'n': 1}, 7, (), 40), ('k', {'n': 2}, 7, (), 40)]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]

from operators.columnar import ColumnarBatch
from streams import plan
from streams.errors import SerializationError
from streams.runtime.broker import as_raw
from streams.serde import Serde
from streams.serdes.arrow import ARROW_IPC


class ArrowValuesDecoder:
    """Decodes one source partition's batches of Arrow IPC values."""

    def __init__(
        self, key_serde: Serde | None, timestamp: plan.Fn | None, topic: str, partition: int
    ) -> None:
        self.key_serde, self.timestamp = key_serde, timestamp
        self.topic, self.partition = topic, partition

    def _table(self, value: bytes | None, offset: int) -> Any:
        if value is None:
            raise SerializationError(
                "a null value on a source with Arrow IPC values",
                topic=self.topic,
                partition=self.partition,
                offset=offset,
            )
        try:
            return ARROW_IPC.table(value)
        except SerializationError as e:
            raise SerializationError(
                f"could not deserialize the value: {e}",
                topic=self.topic,
                partition=self.partition,
                offset=offset,
            ) from e

    def decode(self, msgs: Sequence[Any]) -> ColumnarBatch:
        """One batch of every row of ``msgs`` (raises on the first undecodable message)."""
        return self._batch([as_raw(m) for m in msgs])

    def batches(self, msgs: Sequence[Any]) -> list[ColumnarBatch]:
        """As :meth:`decode`, split where the messages' schemas cannot be unified."""
        raw = [as_raw(m) for m in msgs]
        try:
            return [self._batch(raw)]
        except pa.ArrowInvalid:
            return [self._batch([m]) for m in raw]

    def _batch(self, raw: list[Any]) -> ColumnarBatch:
        tables = [self._table(m[1], m[4]) for m in raw]
        table = tables[0]
        if len(tables) > 1:
            table = pa.concat_tables(tables, promote_options="default")
        n = table.num_rows
        counts = [t.num_rows for t in tables]
        de = None if self.key_serde is None else self.key_serde.deserialize
        keys = [None if de is None or m[0] is None else de(m[0]) for m in raw]

        def spread(xs: list[Any]) -> list[Any]:
            return [x for x, c in zip(xs, counts, strict=True) for _ in range(c)]

        cols = {name: table.column(name).combine_chunks() for name in table.column_names}
        batch = ColumnarBatch(
            cols,
            n,
            keys=spread(keys),
            ts=spread([m[2] for m in raw]),
            headers=spread([m[3] for m in raw]),
            offsets=spread([m[4] for m in raw]),
        )
        if self.timestamp is not None:
            from operators.arrow_json import arrow_timestamps

            batch.ts = arrow_timestamps(self.timestamp, batch)
        return batch


__all__ = ["ArrowValuesDecoder"]
