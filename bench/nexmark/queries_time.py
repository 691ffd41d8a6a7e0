"""Nexmark queries about time and files: q10 (log bids to partitioned files) and q12
(bids per bidder in processing-time windows).

**q10** writes no topic: its result is a directory of Parquet files, Hive-partitioned by
``dt`` (``yyyy-MM-dd``) and ``hm`` (``HH:mm``) of the bid's ``dateTime`` in UTC, as Flink's
filesystem sink ``PARTITIONED BY (dt, hm)`` does (Flink's ``DATE_FORMAT`` of a
``TIMESTAMP(3)`` has no zone: the epoch millisecond's UTC fields). Files roll every minute, as
the official query's ``sink.rolling-policy.rollover-interval``, and at the end of the input.
The directory is :func:`output_dir`'s, else a fresh temporary one; :func:`read_files` reads
the rows back, partition columns included.

**q12** counts bids per bidder in tumbling 10 s windows of *processing time* (Flink's
``TUMBLE`` over ``PROCTIME()``): ``windows.tumbling(..., time="processing")``, windows of the
wall clock of the task counting the bid, closed as the wall clock passes their end (and all
of them at the end of a bounded input). Which window a bid lands in depends on when it runs;
what does not is :func:`per_bidder`, the counts summed per bidder over all windows, which
equals the number of bids per bidder.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import streams as st
from bench.nexmark.base import OUTPUT, of_type, source
from streams import windows

PARTITIONS = ("dt", "hm")
ROLLOVER_S = 60
PROCTIME_WINDOW_MS = 10_000
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


def q12() -> st.Topology:
    """Bids per bidder per tumbling 10 s window of processing time."""
    t, src = source("q12", kinds=("bid",))
    (
        of_type(src, "bid")
        .key_by("bidder", name="q12-by-bidder")
        .window("q12-counts", windows.tumbling(ms=PROCTIME_WINDOW_MS, time="processing"))
        .count()
        .map(_q12_row, name="q12-row")
        .to(OUTPUT)
    )
    return t


def _q12_row(bidder: Any, v: dict[str, Any]) -> tuple[None, dict[str, Any]]:
    return None, {
        "bidder": bidder,
        "bid_count": v["n"],
        "starttime": v["window_start"],
        "endtime": v["window_end"],
    }


def per_bidder(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """q12's rows summed over the windows: ``bidder``, ``bid_count`` (what the reference has)."""
    total: dict[Any, int] = {}
    for r in rows:
        total[r["bidder"]] = total.get(r["bidder"], 0) + r["bid_count"]
    return [{"bidder": b, "bid_count": n} for b, n in sorted(total.items())]


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


__all__ = [
    "PARTITIONS",
    "PROCTIME_WINDOW_MS",
    "output_dir",
    "per_bidder",
    "q10",
    "q12",
    "read_files",
]
