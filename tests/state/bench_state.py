"""Throughput of the RocksDB state backend (not a test; run: python -m tests.state.bench_state).

Measures one WriteBatch of 100K puts, the full cached commit path for 100K puts, and restore()
of 1M changelog records into a key-value and a window store.
"""

from __future__ import annotations

import tempfile
import time

from state import KeyValueStore, RocksDBBackend, WindowStore
from state.encoding import encode_ts


def _rate(n: int, t0: float) -> str:
    dt = time.perf_counter() - t0
    return f"{n / dt / 1000:8.0f}K/s ({dt:.2f} s)"


def main() -> None:
    value = b"v" * 100
    with tempfile.TemporaryDirectory() as d:
        b = RocksDBBackend(f"{d}/batch")
        ops: list[tuple[bytes, bytes | None]] = [(b"key-%012d" % i, value) for i in range(100_000)]
        t0 = time.perf_counter()
        b.write(ops, {"offset": b"100000"})
        print(f"backend.write, 1 batch of 100K puts:         {_rate(100_000, t0)}")
        b.close()

        s = KeyValueStore(RocksDBBackend(f"{d}/kv"), cache_max_entries=100_000)
        t0 = time.perf_counter()
        for i in range(100_000):
            s.put(b"key-%012d" % (i * 7919 % 100_000), value)
        records = s.flush({"offset": b"1"})
        print(f"kv put x100K + take/changelog/write_back:    {_rate(100_000, t0)}")
        s.close()

        log = [(b"key-%012d" % i, value) for i in range(1_000_000)]
        s = KeyValueStore(RocksDBBackend(f"{d}/kv-restore"))
        t0 = time.perf_counter()
        s.restore(log, meta={"offset": b"1000000"})
        print(f"KeyValueStore.restore, 1M records:           {_rate(1_000_000, t0)}")
        s.close()

        wlog = [
            (b"key-%06d" % (i % 100_000) + encode_ts(i // 100_000 * 60_000), value)
            for i in range(1_000_000)
        ]
        w = WindowStore(RocksDBBackend(f"{d}/win-restore"))
        t0 = time.perf_counter()
        w.restore(wlog)
        print(f"WindowStore.restore, 1M records (2M keys):   {_rate(1_000_000, t0)}")
        w.close()
        del records


if __name__ == "__main__":
    main()
