"""A RocksDB store killed without close() reopens with data and offsets from the same commit."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from state import KeyValueStore, RocksDBBackend

_WRITER = textwrap.dedent(
    """
    import os, sys
    from state import KeyValueStore, RocksDBBackend
    # Tiny memtables force many flushes, so some commits reach disk before the kill.
    store = KeyValueStore(RocksDBBackend(sys.argv[1], write_buffer_size=64 * 1024))
    for commit in range(1, 301):
        for i in range(50):
            store.put(b"k%03d" % i, b"%06d" % commit + b"x" * 100)
        store.flush(meta={"offset": b"%d" % commit})
    os._exit(0)  # no close(): the WAL is off, so the unflushed tail is lost
    """
)


def test_kill_without_close_keeps_data_and_meta_consistent(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    subprocess.run([sys.executable, "-c", _WRITER, path], check=True, timeout=120)
    store = KeyValueStore(RocksDBBackend(path))
    try:
        offset = store.read_meta("offset")
        values = {v[:6] for _, v in store.all()}
        if offset is None:
            assert values == set()
        else:
            assert values == {b"%06d" % int(offset)}, (offset, sorted(values)[:3])
            assert int(offset) > 1  # the small memtables did flush something
    finally:
        store.close()
