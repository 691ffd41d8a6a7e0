"""The RocksDB backend on ``rocksdict``: raw bytes, WAL off, metadata in its own column family.

Durability comes from the changelog topic, so writes skip the WAL. Data and metadata go in one
``WriteBatch`` and the two column families are flushed atomically (``atomic_flush``): after a
crash both are from the same point in time, possibly an older one, and the changelog replay
starts from the stored offset.

>>> import tempfile, os
>>> d = tempfile.mkdtemp()
>>> b = RocksDBBackend(os.path.join(d, "store"))
>>> b.write([(b"k", b"v")], meta={"offset": b"1"})
>>> b.close()
>>> b = RocksDBBackend(os.path.join(d, "store"))
>>> b.get(b"k"), b.read_meta("offset")
(b'v', b'1')
>>> b.destroy(); os.path.exists(os.path.join(d, "store"))
False
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator, Mapping
from typing import cast

import rocksdict

from state.encoding import prefix_end
from streams.core.errors import StateError

_META_CF = "meta"
_Items = Iterable[tuple[bytes, bytes]]  # what RdictItems yields in raw mode


class RocksDBMemory:
    """What bounds the memory of a process's RocksDB stores, shared by all of them (a
    worker's tasks): one LRU ``block_cache_bytes`` cache for data, index and filter blocks,
    and a write buffer manager that flushes memtables once all stores' together reach
    ``write_buffer_bytes``. Without it, each store has its own RocksDB defaults: up to
    2 x 64 MiB of memtables per column family, index blocks outside any cache.

    >>> m = RocksDBMemory(block_cache_bytes=8 << 20, write_buffer_bytes=4 << 20)
    >>> m.write_buffers.get_buffer_size()
    4194304
    """

    def __init__(self, block_cache_bytes: int = 64 << 20, write_buffer_bytes: int = 32 << 20):
        if block_cache_bytes < 1 or write_buffer_bytes < 1:
            raise StateError("RocksDB block cache and write buffer sizes must be >= 1 byte")
        self.block_cache_bytes = block_cache_bytes
        self.write_buffer_bytes = write_buffer_bytes
        self.cache = rocksdict.Cache(block_cache_bytes)
        self.write_buffers = rocksdict.WriteBufferManager(write_buffer_bytes, False)

    def usage(self) -> int:
        """Bytes in the block cache and in memtables now."""
        return int(self.cache.get_usage()) + int(self.write_buffers.get_usage())


def _options(write_buffer_size: int | None, memory: RocksDBMemory | None) -> rocksdict.Options:
    opts = rocksdict.Options(raw_mode=True)
    opts.create_if_missing(True)
    opts.create_missing_column_families(True)
    # WAL is off: without atomic flush one column family could reach disk before the other
    # and a crash would leave data and offsets from different commits.
    opts.set_atomic_flush(True)
    opts.set_keep_log_file_num(2)
    table = rocksdict.BlockBasedOptions()
    # most gets of a store that keeps growing are for keys it does not have yet (a new key
    # of an aggregation): a bloom filter answers those without reading a block
    table.set_bloom_filter(10, False)
    if memory is not None:
        table.set_block_cache(memory.cache)
        # index and filter blocks in the cache too: else they grow with the data, outside it.
        # Partitioned: the cache is split in shards (~1 MiB each at 64 MiB), and a whole
        # filter of a big file (~2.5 MB at 2M keys) fits in none, so every get read it from
        # the file again (measured: a count over 3M new keys fell from ~60K to ~4K records/s
        # past 1.5M keys, most of it system time)
        table.set_cache_index_and_filter_blocks(True)
        table.set_pin_l0_filter_and_index_blocks_in_cache(True)
        table.set_partition_filters(True)
        table.set_index_type(rocksdict.BlockBasedIndexType.two_level_index_search())
        table.set_metadata_block_size(4096)
        table.set_pin_top_level_index_and_filter(True)
        opts.set_write_buffer_manager(memory.write_buffers)
        # a memtable no bigger than a quarter of the budget, so a flush frees a part of it
        opts.set_write_buffer_size(max(1 << 20, min(64 << 20, memory.write_buffer_bytes // 4)))
    opts.set_block_based_table_factory(table)
    if write_buffer_size is not None:
        opts.set_write_buffer_size(write_buffer_size)
    return opts


def _meta_options(memory: RocksDBMemory | None) -> rocksdict.Options:
    opts = rocksdict.Options(raw_mode=True)
    if memory is not None:
        opts.set_write_buffer_manager(memory.write_buffers)
        opts.set_write_buffer_size(1 << 20)  # (offsets and watermarks: a few keys)
    return opts


class RocksDBBackend:
    """A RocksDB database at ``path`` (one per store partition), keys and values raw bytes.

    ``write_buffer_size`` (bytes per memtable) is exposed for tests that need frequent flushes;
    ``memory`` bounds its caches and memtables with other stores' (:class:`RocksDBMemory`).
    Iterators hold the database open: exhaust or drop them before :meth:`close`.
    """

    def __init__(
        self,
        path: str,
        *,
        write_buffer_size: int | None = None,
        memory: RocksDBMemory | None = None,
    ) -> None:
        self._path = os.path.abspath(path)
        if os.path.exists(self._path) and not os.path.isdir(self._path):
            raise StateError(f"cannot open RocksDB state store at {self._path}: not a directory")
        try:
            self._db: rocksdict.Rdict | None = rocksdict.Rdict(
                self._path,
                _options(write_buffer_size, memory),
                column_families={_META_CF: _meta_options(memory)},
            )
            self._meta: rocksdict.Rdict | None = self._db.get_column_family(_META_CF)
            self._meta_handle: rocksdict.ColumnFamily | None = self._db.get_column_family_handle(
                _META_CF
            )
        except Exception as e:  # rocksdict raises bare Exception for Corruption / IO errors
            raise StateError(f"cannot open RocksDB state store at {self._path}: {e}") from e
        self._write_opts = rocksdict.WriteOptions()
        # rocksdict's stubs declare a method, but at run time disable_wal is a property.
        self._write_opts.disable_wal = True  # type: ignore[method-assign,assignment]

    @property
    def path(self) -> str | None:
        """The database directory."""
        return self._path

    def _live(self) -> rocksdict.Rdict:
        if self._db is None:
            raise StateError(f"RocksDB state store at {self._path} is closed")
        return self._db

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key``, or None."""
        value: bytes | None = self._live().get(key)
        return value

    def write(
        self, ops: Iterable[tuple[bytes, bytes | None]], meta: Mapping[str, bytes] | None = None
    ) -> None:
        """Apply ``ops`` and ``meta`` in one WAL-less ``WriteBatch``."""
        db = self._live()
        wb = rocksdict.WriteBatch(raw_mode=True)
        put, delete = wb.put, wb.delete
        for key, value in ops:
            if value is None:
                delete(key)
            else:
                put(key, value)
        if meta:
            for name, value in meta.items():
                wb.put(name.encode(), value, self._meta_handle)
        try:
            db.write(wb, self._write_opts)
        except Exception as e:
            raise StateError(f"write to RocksDB state store at {self._path} failed: {e}") from e

    def read_meta(self, name: str) -> bytes | None:
        """A metadata entry from the ``meta`` column family, or None."""
        self._live()
        assert self._meta is not None
        value: bytes | None = self._meta.get(name.encode())
        return value

    def iter_range(
        self, lo: bytes | None, hi: bytes | None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """Entries with ``lo <= key < hi`` from a consistent snapshot, ascending or descending."""
        db = self._live()
        # Iterator bounds in ReadOptions are not raw-encoded by rocksdict, so bound in Python.
        if reverse:
            items = (
                db.items(backwards=True, from_key=hi)
                if hi is not None
                else db.items(backwards=True)
            )
            return _bounded_desc(cast(_Items, items), lo, hi)
        items = db.items(from_key=lo) if lo is not None else db.items()
        return _bounded_asc(cast(_Items, items), hi)

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Entries whose key starts with ``prefix``."""
        return self.iter_range(prefix, prefix_end(prefix))

    def delete_range(self, lo: bytes, hi: bytes) -> None:
        """Delete ``[lo, hi)`` with one range tombstone."""
        db = self._live()
        wb = rocksdict.WriteBatch(raw_mode=True)
        wb.delete_range(lo, hi)
        try:
            db.write(wb, self._write_opts)
        except Exception as e:
            raise StateError(f"delete_range on RocksDB store at {self._path} failed: {e}") from e

    def approximate_count(self) -> int:
        """RocksDB's ``estimate-num-keys`` for the data column family."""
        value = self._live().property_int_value("rocksdb.estimate-num-keys")
        return int(value or 0)

    def close(self) -> None:
        """Flush memtables (the WAL is off) and close; idempotent."""
        if self._db is None:
            return
        db, meta = self._db, self._meta
        self._db = self._meta = self._meta_handle = None
        try:
            if meta is not None:
                meta.close()
            db.close()
        except Exception as e:
            raise StateError(f"closing RocksDB state store at {self._path} failed: {e}") from e

    def destroy(self) -> None:
        """Close and remove the database directory."""
        self.close()
        shutil.rmtree(self._path, ignore_errors=True)


def _bounded_asc(
    items: Iterable[tuple[bytes, bytes]], hi: bytes | None
) -> Iterator[tuple[bytes, bytes]]:
    if hi is None:
        yield from items
        return
    for item in items:
        if item[0] >= hi:
            return
        yield item


def _bounded_desc(
    items: Iterable[tuple[bytes, bytes]], lo: bytes | None, hi: bytes | None
) -> Iterator[tuple[bytes, bytes]]:
    for item in items:
        key = item[0]
        if hi is not None and key >= hi:
            continue  # seek_for_prev lands on hi itself when it exists
        if lo is not None and key < lo:
            return
        yield item


__all__ = ["RocksDBBackend", "RocksDBMemory"]
