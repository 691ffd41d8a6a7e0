"""State stores over raw bytes: key-value, window and session, on RocksDB or in memory.

Callers serialize; every key and value here is ``bytes``. Each typed store keeps a write-back
cache and exposes the commit protocol ``take_dirty`` -> ``changelog_records`` -> ``write_back``.

>>> import state
>>> kv = state.KeyValueStore(state.open_backend("memory", None))
>>> kv.put(b"k", b"v")
>>> kv.flush(meta={"offset": b"1"})
[(b'k', b'v')]
"""

from state.backend import Backend, MemoryBackend, Op, open_backend
from state.cache import CachedStore, ChangelogRecord
from state.kv import KeyValueStore
from state.rocks import RocksDBBackend
from state.session import SessionStore
from state.window import WindowStore

__all__ = [
    "Backend",
    "CachedStore",
    "ChangelogRecord",
    "KeyValueStore",
    "MemoryBackend",
    "Op",
    "RocksDBBackend",
    "SessionStore",
    "WindowStore",
    "open_backend",
]
