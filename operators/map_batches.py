"""``map_batches``: a user's vectorized function over the values of a micro-batch.

The function takes a ``pyarrow.RecordBatch`` of the batch's values (one column per field) and
returns a ``RecordBatch`` or ``Table`` with as many rows, in the same order; each output row
keeps the key, timestamp and headers of its input row. A columnar batch goes in as its
columns (no Python objects); row batches are converted (dicts and typed records). A failing
function, or a result of another length, is an error naming the step; under the step's error
policy ``skip``/``dead_letter`` every record of that batch goes to the policy (there is no
single record to blame).

>>> import pyarrow as pa, pyarrow.compute as pc
>>> from streams.plan import nodes as plan
>>> from operators.base import Forward
>>> out = []
>>> class Keep:
...     def process(self, rows): out.extend(rows)
>>> def cents(b):
...     return b.append_column("cents", pc.multiply(b.column("eur"), 100))
>>> node = plan.MapBatches(step="mb", parents=("s",), fn=plan.as_fn("mb", "f", cents, allow_expr=False))
>>> MapBatchesProcessor(node, [Keep()]).process([("k", {"eur": 2}, 5, (), 0)])
>>> out
[('k', {'eur': 2, 'cents': 200}, 5, (), 0)]
"""  # noqa: E501

from __future__ import annotations

from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]

from operators.base import Processor, Rows
from operators.columnar import ColumnarBatch, push_columnar
from operators.errors import ErrorPolicy
from streams.core.errors import ProcessingError
from streams.core.types import as_mapping
from streams.plan import nodes as plan


class MapBatchesProcessor:
    """Runs ``node.fn`` on each batch (rows or columnar) and passes the result on."""

    accepts_columnar = True

    def __init__(
        self, node: plan.MapBatches, children: list[Processor], policy: ErrorPolicy | None = None
    ) -> None:
        self.step = node.step
        self.fn = node.fn.as_callable()
        self.children = children
        self.policy = policy

    def _call(self, values: Any, n: int) -> Any:
        try:
            out = self.fn(values)
        except Exception as e:
            raise ProcessingError(
                f"map_batches function failed: {type(e).__name__}: {e}", step=self.step
            ) from e
        if isinstance(out, pa.Table):
            out = out.combine_chunks().to_batches()
            out = out[0] if out else None
        if out is None and n == 0:
            return pa.record_batch({})
        if not isinstance(out, pa.RecordBatch) or out.num_rows != n:
            got = type(out).__name__ if not hasattr(out, "num_rows") else f"{out.num_rows} rows"
            raise ProcessingError(
                f"map_batches function must return a pyarrow RecordBatch or Table of {n} rows "
                f"(one per input row, in order), got {got}",
                step=self.step,
            )
        return out

    def _failed(self, rows: Rows, err: ProcessingError) -> None:
        if self.policy is None or self.policy.fails:
            raise err
        for r in rows:
            self.policy.handle(r, err)

    def process(self, rows: Rows) -> None:
        if not rows:
            return
        try:
            values = pa.RecordBatch.from_pylist([as_mapping(r[1]) for r in rows])
            out = self._call(values, len(rows)).to_pylist()
        except ProcessingError as e:
            self._failed(rows, e)
            return
        except (TypeError, pa.ArrowException) as e:
            err = ProcessingError(f"values do not convert to Arrow: {e}", step=self.step)
            self._failed(rows, err)
            return
        new = [(r[0], v, r[2], r[3], r[4]) for r, v in zip(rows, out, strict=True)]
        for c in self.children:
            c.process(new)

    def process_columnar(self, batch: ColumnarBatch) -> None:
        if batch.n == 0:
            return
        if batch.scalar is not None or (batch.rows is not None and batch.overlay is not None):
            self.process(batch.to_rows())  # (values that are not exactly the columns)
            return
        values = pa.RecordBatch.from_pydict(batch.columns())
        try:
            out = self._call(values, batch.n)
        except ProcessingError as e:
            self._failed(batch.to_rows(), e)
            return
        b = batch.copy()
        new = {name: out.column(i) for i, name in enumerate(out.schema.names)}
        b.base, b.cols, b.names, b.overlay, b.record = {}, new, list(new), None, None
        push_columnar(self.children, b)


__all__ = ["MapBatchesProcessor"]
