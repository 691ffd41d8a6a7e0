"""JSON decoders on Nexmark lines: how long parsing alone takes, the floor under q1/q2's
columnar-vs-row ratio from JSON input. Each decodes the file in 10K-line batches on one thread,
keeping the 5 fields q1 reads (``type``, ``auction``, ``bidder``, ``price``, ``dateTime``):

- ``pyarrow.json`` with an explicit schema (what a source with ``schema=`` runs);
- msgspec into typed structs (no columns), then with the columns built;
- msgspec into dicts (what row mode runs, every field);
- DuckDB ``read_json`` and polars ``read_ndjson``, when installed (they are not dependencies:
  DuckDB also needs fsspec to read an in-memory buffer).

    python -m bench nexmark generate --events 200000 --seed 1 --out /tmp/nx200k.jsonl
    PYTHONPATH=. python bench/json_decoders.py /tmp/nx200k.jsonl [--repeat 3]

CPU seconds, best of ``--repeat``.
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable
from typing import Any

import msgspec
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.json as pj  # type: ignore[import-untyped]

FIELDS = ["type", "auction", "bidder", "price", "dateTime"]
SCHEMA = pa.schema([(f, pa.string() if f == "type" else pa.int64()) for f in FIELDS])
BATCH = 10_000


class Event(msgspec.Struct):
    type: str
    auction: int | None = None
    bidder: int | None = None
    price: int | None = None
    dateTime: int | None = None


def _batches(lines: list[bytes]) -> list[list[bytes]]:
    return [lines[i : i + BATCH] for i in range(0, len(lines), BATCH)]


def decoders(lines: list[bytes]) -> dict[str, Callable[[], Any]]:
    batches = _batches(lines)
    opts = pj.ParseOptions(explicit_schema=SCHEMA, unexpected_field_behavior="ignore")
    read = pj.ReadOptions(use_threads=False, block_size=1 << 30)
    structs = msgspec.json.Decoder(list[Event])
    dicts = msgspec.json.Decoder()

    def arrow() -> Any:
        return [
            pj.read_json(io.BytesIO(b"\n".join(b)), read_options=read, parse_options=opts)
            for b in batches
        ]

    def msgspec_structs() -> Any:
        return [structs.decode(b"[" + b",".join(b) + b"]") for b in batches]

    def msgspec_columns() -> Any:
        out = []
        for b in batches:
            evs = structs.decode(b"[" + b",".join(b) + b"]")
            out.append(
                {f: pa.array([getattr(e, f) for e in evs], SCHEMA.field(f).type) for f in FIELDS}
            )
        return out

    def msgspec_dicts() -> Any:
        return [dicts.decode(x) for x in lines]

    out: dict[str, Callable[[], Any]] = {
        "pyarrow.json (schema)": arrow,
        "msgspec structs": msgspec_structs,
        "msgspec structs + columns": msgspec_columns,
        "msgspec dicts (row mode)": msgspec_dicts,
    }
    try:
        import duckdb  # type: ignore[import-not-found]
        import fsspec  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        pass
    else:
        con = duckdb.connect()
        con.execute("SET threads=1")
        cols = {f: "VARCHAR" if f == "type" else "BIGINT" for f in FIELDS}

        def duck() -> Any:
            return [
                con.read_json(io.BytesIO(b"\n".join(b)), columns=cols).to_arrow_table()
                for b in batches
            ]

        out[f"duckdb {duckdb.__version__} read_json"] = duck
    try:
        import polars as pl  # type: ignore[import-not-found]
    except ImportError:
        pass
    else:
        pl_schema = {f: pl.Utf8 if f == "type" else pl.Int64 for f in FIELDS}

        def polars() -> Any:
            return [pl.read_ndjson(io.BytesIO(b"\n".join(b)), schema=pl_schema) for b in batches]

        out[f"polars {pl.__version__} read_ndjson"] = polars
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with open(args.input, "rb") as f:
        lines = [x for x in f.read().splitlines() if x.strip()]
    print(f"{len(lines)} lines, {BATCH}-line batches, CPU s, best of {args.repeat}:")
    for name, fn in decoders(lines).items():
        best = float("inf")
        for _ in range(args.repeat):
            c = time.process_time()
            fn()
            best = min(best, time.process_time() - c)
        print(f"  {name:32s} {best:.3f}")


if __name__ == "__main__":
    main()
