"""Decoding a fetched batch of Confluent-framed Avro values: per record into dicts (a source
without a schema), into an Arrow batch (``schema="infer"``, operators/arrow_avro.py), and, for
comparison, as one Avro object-container block (``fastavro.reader``; not used: it cannot tell
where one message ends, so a malformed message would shift the next ones into wrong values).

    PYTHONPATH=. python bench/avro_decode.py [--records 10000] [--repeat 15]

Best of ``--repeat`` runs, milliseconds per batch.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time
from collections.abc import Callable
from typing import Any

import fastavro
import pyarrow as pa  # type: ignore[import-untyped]

from operators.arrow_avro import ArrowAvroDecoder
from operators.source import Decoder
from streams.core.serde import STR
from streams.core.serdes import AvroSerde, InMemoryRegistry

BID = {
    "type": "record",
    "name": "Bid",
    "fields": [
        {"name": "auction", "type": "long"},
        {"name": "bidder", "type": "long"},
        {"name": "price", "type": "long"},
        {"name": "channel", "type": "string"},
        {"name": "url", "type": "string"},
        {"name": "dateTime", "type": "long"},
        {"name": "extra", "type": "string"},
    ],
}


def _zigzag(n: int) -> bytes:
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def container_block(values: list[bytes], schema: Any) -> list[Any]:
    """The payloads (headers stripped) read as one block of an in-memory container file."""
    sync = os.urandom(16)
    meta = {b"avro.schema": json.dumps(schema).encode(), b"avro.codec": b"null"}
    head = b"Obj\x01" + _zigzag(len(meta))
    head += b"".join(_zigzag(len(k)) + k + _zigzag(len(v)) + v for k, v in meta.items())
    body = b"".join(v[5:] for v in values)
    data = head + _zigzag(0) + sync + _zigzag(len(values)) + _zigzag(len(body)) + body + sync
    return list(fastavro.reader(io.BytesIO(data)))


def best(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    reg = InMemoryRegistry()
    writer = AvroSerde(reg, schema=BID, topic="bids")
    msgs = []
    for i in range(args.records):
        bid = {"auction": i, "bidder": i * 7, "price": i % 1000, "channel": f"ch-{i % 5}"}
        bid |= {"url": f"https://x.example/a/{i}", "dateTime": 1_700_000_000_000 + i}
        msgs.append((None, writer.serialize({**bid, "extra": "e" * (i % 20)}), i, (), i))
    serde = AvroSerde(reg)
    rows = Decoder("s", "bids", 0, STR, serde, None)
    arrow = ArrowAvroDecoder(serde, "infer", STR, "bids", 0)
    [batch] = arrow.batches(msgs)
    assert [r[1] for r in batch.to_rows()] == [r[1] for r in rows.decode(msgs)]
    schema = pa.schema([(n, a.type) for n, a in batch.base.items()])
    values = [m[1] for m in msgs]

    def block() -> Any:
        return pa.RecordBatch.from_pylist(container_block(values, BID), schema=schema)

    assert block().to_pylist() == [r[1] for r in batch.to_rows()]
    cases = {
        "row decode (dicts)": lambda: rows.decode(msgs),
        "Arrow decode (kept)": lambda: arrow.batches(msgs),
        "container block -> Arrow": block,
    }
    print(f"{args.records} records, best of {args.repeat}:")
    for name, fn in cases.items():
        print(f"  {name:28s} {best(fn, args.repeat):7.1f} ms")


if __name__ == "__main__":
    main()
