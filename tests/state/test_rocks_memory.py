"""RocksDBMemory: the stores of a worker share one block cache and one write buffer budget."""

from pathlib import Path

import pytest

from state import KeyValueStore, RocksDBBackend
from state.rocks import RocksDBMemory
from streams.core.errors import StateError


def sst_files(path: Path) -> int:
    return len(list(path.glob("*.sst")))


def write(store: KeyValueStore, n: int, tag: bytes) -> None:
    for start in range(0, n, 1000):
        for i in range(start, start + 1000):
            store.put(tag + b"%08d" % i, b"v" * 200)
        store.flush()


def test_the_shared_write_buffer_budget_flushes_memtables(tmp_path):
    """4 MB written to each of two stores: with a 1 MiB budget for both, memtables go to disk
    while they are written; with RocksDB's defaults (64 MiB memtables) nothing is flushed."""
    memory = RocksDBMemory(block_cache_bytes=1 << 20, write_buffer_bytes=1 << 20)
    bounded = [RocksDBBackend(str(tmp_path / f"b{i}"), memory=memory) for i in range(2)]
    default = RocksDBBackend(str(tmp_path / "d"))
    for i, b in enumerate(bounded):
        write(KeyValueStore(b), 20_000, b"%d" % i)
    write(KeyValueStore(default), 20_000, b"d")
    assert all(sst_files(tmp_path / f"b{i}") > 0 for i in range(2))
    assert sst_files(tmp_path / "d") == 0
    assert memory.write_buffers.get_usage() <= 2 << 20
    # reads go through the shared cache, and are right
    assert KeyValueStore(bounded[1]).get(b"100000123") == b"v" * 200
    assert 0 < memory.cache.get_usage() <= 1 << 20
    for b in [*bounded, default]:
        b.close()


def test_sizes_must_be_positive():
    with pytest.raises(StateError, match="must be >= 1 byte"):
        RocksDBMemory(block_cache_bytes=0)
