"""Nexmark queries about time and files: q10 (log bids to partitioned files) and q12
(bids per bidder in processing-time windows).

**q10** writes no topic: its result is a directory of Parquet files, Hive-partitioned by
``dt`` (``yyyy-MM-dd``) and ``hm`` (``HH:mm``) of the bid's ``dateTime`` in UTC, as Flink's
filesystem sink ``PARTITIONED BY (dt, hm)`` does (Flink's ``DATE_FORMAT`` of a
``TIMESTAMP(3)`` has no zone: the epoch millisecond's UTC fields). Files roll every minute, as
the official query's ``sink.rolling-policy.rollover-interval``, and at the end of the input.
The directory is :func:`output_dir`'s, else a fresh temporary one; :func:`read_files` reads
the rows back, partition columns included.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import streams as st
from bench.nexmark.base import of_type, source

PARTITIONS = ("dt", "hm")
ROLLOVER_S = 60
_DIR: dict[str, str | None] = {"path": None}


@contextmanager
def output_dir(path: str | os.PathLike[str]) -> Iterator[str]:
    """Within the block, file-output queries built write under ``path``."""
    old, _DIR["path"] = _DIR["path"], os.fspath(path)
    try:
        yield os.fspath(path)
    finally:
        _DIR["path"] = old


def _utc(v: Any) -> datetime:
    """The bid's ``dateTime`` (a typed event, or a dict where a run converts batches to
    dicts) in UTC, to the second (the formats go no finer)."""
    ms = v["dateTime"] if isinstance(v, dict) else v.dateTime
    return datetime.fromtimestamp(ms // 1000, UTC)


def _dt(v: Any) -> str:
    return _utc(v).strftime("%Y-%m-%d")


def _hm(v: Any) -> str:
    return _utc(v).strftime("%H:%M")


def q10() -> st.Topology:
    """Log to file system: every bid with ``dt``/``hm`` partition columns, to Parquet files
    under ``{output_dir}/dt=.../hm=.../``."""
    path = _DIR["path"] or tempfile.mkdtemp(prefix="nexmark-q10-")
    t, src = source("q10", kinds=("bid",))
    (
        of_type(src, "bid")
        .select("auction", "bidder", "price", "dateTime", "extra", dt=_dt, hm=_hm, name="q10-row")
        .to_parquet(path, partition_by=PARTITIONS, rotate_every=ROLLOVER_S, name="q10-files")
    )
    return t


def read_files(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every row of a file-output query's directory, the ``dt``/``hm`` directory values as
    string columns (files being written, ``.``/``_`` names, are not read)."""
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.dataset as ds  # type: ignore[import-untyped]

    if not any(os.scandir(path)):
        return []
    schema = pa.schema([(c, pa.string()) for c in PARTITIONS])
    part = ds.partitioning(schema, flavor="hive")
    rows: list[dict[str, Any]] = (
        ds.dataset(path, format="parquet", partitioning=part).to_table().to_pylist()
    )
    return rows


__all__ = ["PARTITIONS", "output_dir", "q10", "read_files"]
