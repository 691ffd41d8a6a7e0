"""Sources with Arrow IPC values (:data:`streams.core.serdes.ARROW_IPC`): a fetched batch of
messages, each an IPC stream of rows, becomes one :class:`~operators.columnar.ColumnarBatch`.

Each row is a record with its message's key, timestamp, headers and offset (a ``timestamp=``
expression of the source runs on the columns instead). Messages whose schemas differ are
unified where Arrow can (a missing column reads as null, ``promote_options="default"``);
otherwise each message is its own batch. A message that is not an IPC stream is a
:class:`~streams.core.errors.SerializationError` naming its offset, handled by the source's error
policy like any undecodable value (the dead-letter topic gets its original bytes).

>>> from streams.core.serde import STR
>>> from streams.core.serdes import ARROW_IPC
>>> v = ARROW_IPC.serialize([{"n": 1}, {"n": 2}])
>>> d = ArrowValuesDecoder(STR, "t", 0)
>>> [b.to_rows() for b in d.batches([(b"k", v, 7, (), 40)])]
[[('k', {'n': 1}, 7, (), 40), ('k', {'n': 2}, 7, (), 40)]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]

from operators.columnar import ColumnarBatch
from streams.core.errors import SerializationError
from streams.core.records import as_raw
from streams.core.serde import Serde
from streams.core.serdes.arrow import ARROW_IPC


class ArrowValuesDecoder:
    """Decodes one source partition's batches of Arrow IPC values (the source applies its
    ``timestamp=`` expression to the batches, as for any columnar input)."""

    def __init__(self, key_serde: Serde | None, topic: str, partition: int) -> None:
        self.key_serde, self.topic, self.partition = key_serde, topic, partition

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

    def batches(self, msgs: Sequence[Any]) -> list[ColumnarBatch]:
        """Every row of ``msgs``: one batch, or one per message where their schemas cannot be
        unified (raises on the first undecodable message)."""
        raw = [as_raw(m) for m in msgs]
        tables = [self._table(m[1], m[4]) for m in raw]
        try:
            return [self._batch(raw, tables)]
        except pa.ArrowInvalid:  # (each message is decoded once either way)
            return [self._batch([m], [t]) for m, t in zip(raw, tables, strict=True)]

    def _batch(self, raw: list[Any], tables: list[Any]) -> ColumnarBatch:
        table = tables[0]
        if len(tables) > 1:
            table = pa.concat_tables(tables, promote_options="default")
        counts = [t.num_rows for t in tables]
        de = None if self.key_serde is None else self.key_serde.deserialize
        keys = [None if de is None or m[0] is None else de(m[0]) for m in raw]

        def spread(xs: list[Any]) -> list[Any]:
            return [x for x, c in zip(xs, counts, strict=True) for _ in range(c)]

        cols = {name: table.column(name).combine_chunks() for name in table.column_names}
        return ColumnarBatch(
            cols,
            table.num_rows,
            keys=spread(keys),
            ts=spread([m[2] for m in raw]),
            headers=spread([m[3] for m in raw]),
            offsets=spread([m[4] for m in raw]),
        )


__all__ = ["ArrowValuesDecoder"]
