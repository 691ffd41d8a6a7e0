"""Store contract: the same behaviour from the memory and the RocksDB backend."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from state import (
    Backend,
    KeyValueStore,
    RocksDBBackend,
    SessionStore,
    WindowStore,
    open_backend,
)
from state.encoding import INT64_MAX, INT64_MIN, encode_ts
from streams.core.errors import StateError

from .conftest import MakeBackend

# -- backend -----------------------------------------------------------------------------------


def _fill(b: Backend) -> None:
    b.write([(bytes([i]), b"v%d" % i) for i in range(10)] + [(b"\x03", None)])


def test_backend_get_write_delete(backend: Backend) -> None:
    _fill(backend)
    assert backend.get(b"\x02") == b"v2"
    assert backend.get(b"\x03") is None
    backend.write([(b"\x02", None), (b"\x04", b"new")])
    assert backend.get(b"\x02") is None
    assert backend.get(b"\x04") == b"new"


def test_backend_ranges(backend: Backend) -> None:
    _fill(backend)

    def keys(it: Iterator[tuple[bytes, bytes]]) -> list[int]:
        return [k[0] for k, _ in it]

    assert keys(backend.iter_range(b"\x02", b"\x06")) == [2, 4, 5]
    assert keys(backend.iter_range(b"\x02", b"\x06", reverse=True)) == [5, 4, 2]
    assert keys(backend.iter_range(None, b"\x02")) == [0, 1]
    assert keys(backend.iter_range(b"\x08", None)) == [8, 9]
    assert keys(backend.iter_range(None, None, reverse=True)) == [9, 8, 7, 6, 5, 4, 2, 1, 0]
    assert keys(backend.iter_range(b"\x05", b"\x05")) == []
    assert keys(backend.iter_range(b"\x03", b"\x04", reverse=True)) == []


def test_backend_prefix_and_delete_range(backend: Backend) -> None:
    backend.write([(b"a", b"1"), (b"ab", b"2"), (b"ab\xff", b"3"), (b"b", b"4"), (b"\xff", b"5")])
    assert [k for k, _ in backend.iter_prefix(b"ab")] == [b"ab", b"ab\xff"]
    assert [k for k, _ in backend.iter_prefix(b"\xff")] == [b"\xff"]
    backend.delete_range(b"a", b"b")
    assert [k for k, _ in backend.iter_range(None, None)] == [b"b", b"\xff"]
    assert backend.approximate_count() >= 1


def test_backend_iteration_survives_writes(backend: Backend) -> None:
    backend.write([(b"%05d" % i, b"x") for i in range(1000)])
    seen = 0
    for k, _ in backend.iter_range(None, None):
        backend.write([(k, None)])
        seen += 1
    assert seen == 1000
    assert list(backend.iter_range(None, None)) == []


def test_backend_long_reverse_scan(backend: Backend) -> None:
    backend.write([(b"%05d" % i, b"x") for i in range(1000)])
    got = [int(k) for k, _ in backend.iter_range(b"00100", b"00900", reverse=True)]
    assert got == list(range(899, 99, -1))


def test_open_backend_rejects_bad_arguments() -> None:
    with pytest.raises(StateError, match="needs a path"):
        open_backend("rocksdb", None)
    with pytest.raises(StateError, match="unknown"):
        open_backend("lmdb", None)  # type: ignore[arg-type]


def test_meta_written_with_data(backend: Backend) -> None:
    assert backend.read_meta("offset") is None
    backend.write([(b"k", b"v")], meta={"offset": b"10", "source": b"3"})
    assert backend.read_meta("offset") == b"10"
    backend.write([], meta={"offset": b"11"})
    assert (backend.read_meta("offset"), backend.read_meta("source")) == (b"11", b"3")
    assert list(backend.iter_range(None, None)) == [(b"k", b"v")]  # meta never shows in scans


def test_closed_backend_raises(backend: Backend) -> None:
    backend.close()
    with pytest.raises(StateError):
        backend.get(b"k")


def test_rocksdb_meta_and_data_survive_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    b = RocksDBBackend(path)
    b.write([(b"k", b"v"), (b"gone", b"x")], meta={"offset": b"5"})
    b.write([(b"gone", None)], meta={"offset": b"6"})
    b.close()
    b = RocksDBBackend(path)
    assert (b.get(b"k"), b.get(b"gone"), b.read_meta("offset")) == (b"v", None, b"6")
    assert list(b.iter_range(None, None)) == [(b"k", b"v")]
    b.destroy()
    assert not os.path.exists(path)


@pytest.mark.parametrize("victim", ["CURRENT", "MANIFEST", ".sst", "*"])
def test_rocksdb_corrupt_directory_raises_state_error(tmp_path: Path, victim: str) -> None:
    path = str(tmp_path / "db")
    b = RocksDBBackend(path)
    b.write([(b"k", b"v")], meta={"offset": b"1"})
    b.close()
    for name in os.listdir(path):
        if victim == "*" or victim in name:
            with open(os.path.join(path, name), "wb") as f:
                f.write(b"\x00garbage\xff" * 7)
    with pytest.raises(StateError, match=str(tmp_path)):
        RocksDBBackend(path)


def test_rocksdb_path_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"not a db")
    with pytest.raises(StateError, match="not a directory"):
        RocksDBBackend(str(tmp_path / "f"))


# -- key-value store ---------------------------------------------------------------------------


def test_kv_get_put_delete_range_prefix(backend: Backend) -> None:
    s = KeyValueStore(backend)
    for k in (b"a1", b"a2", b"b1", b"b2", b"c"):
        s.put(k, k.upper())
    s.delete(b"b1")
    assert s.get(b"a1") == b"A1" and s.get(b"b1") is None and s.get(b"zz") is None
    assert [k for k, _ in s.range(b"a2", b"c")] == [b"a2", b"b2"]
    assert [k for k, _ in s.range(b"a2", b"c", reverse=True)] == [b"b2", b"a2"]
    assert [k for k, _ in s.prefix(b"b")] == [b"b2"]
    assert [k for k, _ in s.all()] == [b"a1", b"a2", b"b2", b"c"]
    s.flush()
    assert [k for k, _ in s.all()] == [b"a1", b"a2", b"b2", b"c"]
    assert s.approximate_count() >= 1


def test_kv_cache_overlays_backend(backend: Backend) -> None:
    s = KeyValueStore(backend)
    for k in (b"a", b"b", b"c", b"d"):
        s.put(k, b"old")
    s.flush()
    s.put(b"b", b"new")
    s.delete(b"c")
    s.put(b"bb", b"fresh")
    assert s.get(b"c") is None and s.get(b"b") == b"new"
    expected = [(b"a", b"old"), (b"b", b"new"), (b"bb", b"fresh"), (b"d", b"old")]
    assert list(s.all()) == expected
    assert list(s.range(None, None, reverse=True)) == expected[::-1]
    assert backend.get(b"c") == b"old"  # nothing written back yet


def test_kv_take_dirty_one_op_per_key(backend: Backend) -> None:
    s = KeyValueStore(backend, cache_max_entries=3)
    for i in range(100):
        s.put(b"k", b"%d" % i)
        s.put(b"j", b"%d" % i)
    s.delete(b"j")
    assert not s.needs_flush
    s.put(b"x", b"1")
    assert s.needs_flush
    ops = s.take_dirty()
    assert ops == [(b"j", None), (b"k", b"99"), (b"x", b"1")]
    assert s.dirty_count == 0 and not s.needs_flush


def test_kv_reads_see_taken_but_unwritten_ops(backend: Backend) -> None:
    s = KeyValueStore(backend)
    s.put(b"a", b"1")
    ops = s.take_dirty()
    assert s.get(b"a") == b"1" and list(s.all()) == [(b"a", b"1")]
    s.put(b"b", b"2")  # written while the commit is in flight
    retry = s.take_dirty()  # commit retried before write_back: union of both
    assert retry == [(b"a", b"1"), (b"b", b"2")]
    s.write_back(retry, {"offset": b"2"})
    assert ops  # first attempt's ops were superseded, not lost
    assert s.take_dirty() == [] and s.get(b"b") == b"2"


def test_kv_scan_while_writing(backend: Backend) -> None:
    s = KeyValueStore(backend)
    for i in range(50):
        s.put(b"%03d" % i, b"0")
    s.flush()
    for i in range(50, 100):
        s.put(b"%03d" % i, b"0")
    for k, v in s.all():
        s.put(k, v + b"1")
    assert all(v == b"01" for _, v in s.all())
    assert len(list(s.all())) == 100


def test_kv_changelog_restore_reproduces(make_backend: MakeBackend) -> None:
    s = KeyValueStore(make_backend("a"))
    log = []
    for round_ in range(3):
        for i in range(30):
            if (i + round_) % 4 == 0:
                s.delete(b"k%02d" % i)
            else:
                s.put(b"k%02d" % i, b"r%d" % round_)
        log += s.flush(meta={"offset": b"%d" % round_})
    fresh = KeyValueStore(make_backend("b"))
    assert fresh.restore(log, meta={"offset": b"2"}, batch_size=7) == len(log)
    assert list(fresh.all()) == list(s.all())
    assert fresh.read_meta("offset") == b"2"


def test_restore_refuses_dirty_store(backend: Backend) -> None:
    s = KeyValueStore(backend)
    s.put(b"a", b"1")
    with pytest.raises(StateError):
        s.restore([(b"b", b"2")])


# -- window store ------------------------------------------------------------------------------


def test_window_put_get_fetch_inclusive(backend: Backend) -> None:
    w = WindowStore(backend)
    for start in (0, 10, 20, 30):
        w.put(b"k", start, b"v%d" % start)
    w.put(b"k2", 10, b"other")
    w.put(b"k\x00", 10, b"prefix-sibling")  # a key that extends b"k" must not leak into fetch
    assert w.get(b"k", 10) == b"v10" and w.get(b"k", 11) is None
    assert [s for s, _ in w.fetch(b"k", 10, 30)] == [10, 20, 30]
    assert [s for s, _ in w.fetch(b"k", 11, 29)] == [20]
    assert [s for s, _ in w.fetch(b"k", 10, 10)] == [10]
    assert list(w.fetch(b"k", 30, 10)) == []
    assert [s for s, _ in w.fetch(b"k", 0, 30, reverse=True)] == [30, 20, 10, 0]
    w.delete(b"k", 20)
    assert [s for s, _ in w.fetch(b"k", INT64_MIN, INT64_MAX)] == [0, 10, 30]


def test_window_negative_and_extreme_timestamps(backend: Backend) -> None:
    w = WindowStore(backend)
    for start in (INT64_MIN, -(10**12), -1, 0, 1, INT64_MAX):
        w.put(b"k", start, b"%d" % start)
    w.flush()
    got = [s for s, _ in w.fetch(b"k", INT64_MIN, INT64_MAX)]
    assert got == [INT64_MIN, -(10**12), -1, 0, 1, INT64_MAX]
    assert [s for s, _ in w.fetch(b"k", -1, 0)] == [-1, 0]
    assert [s for _, s, _ in w.fetch_all(INT64_MAX, INT64_MAX)] == [INT64_MAX]
    with pytest.raises(ValueError):
        w.put(b"k", INT64_MAX + 1, b"x")


def test_window_cache_limit_counts_windows(backend: Backend) -> None:
    w = WindowStore(backend, cache_max_entries=2)
    w.put(b"a", 0, b"1")
    assert not w.needs_flush
    w.put(b"a", 10, b"1")
    assert w.needs_flush and len(w.take_dirty()) == 4  # two windows, each with its index entry


def test_window_fetch_all_orders_by_start_then_key(backend: Backend) -> None:
    w = WindowStore(backend)
    w.put(b"b", 10, b"1")
    w.put(b"a", 20, b"2")
    w.flush()
    w.put(b"a", 10, b"3")
    w.put(b"c", -5, b"4")
    got = [(k, s) for k, s, _ in w.fetch_all(-5, 20)]
    assert got == [(b"c", -5), (b"a", 10), (b"b", 10), (b"a", 20)]
    assert [(k, s) for k, s, _ in w.fetch_all(0, 10)] == [(b"a", 10), (b"b", 10)]


def test_window_expire_returns_and_deletes(backend: Backend) -> None:
    w = WindowStore(backend)
    for key in (b"a", b"b"):
        for start in (-10, 0, 10, 20):
            w.put(key, start, b"v")
    w.flush()
    w.put(b"c", 5, b"dirty")  # still in the cache: expire sees it too
    removed = w.expire(10)
    assert removed == [(b"a", -10), (b"b", -10), (b"a", 0), (b"b", 0), (b"c", 5)]
    assert [(k, s) for k, s, _ in w.fetch_all(INT64_MIN, INT64_MAX)] == [
        (b"a", 10),
        (b"b", 10),
        (b"a", 20),
        (b"b", 20),
    ]
    records = w.changelog_records(w.take_dirty())
    assert {(ck[:-8], v) for ck, v in records} == {(k, None) for k in (b"a", b"b", b"c")}
    assert len(records) == 5
    assert w.expire(10) == []


def test_window_changelog_restore_reproduces(make_backend: MakeBackend) -> None:
    w = WindowStore(make_backend("a"))
    log = []
    for i in range(40):
        w.put(b"k%d" % (i % 3), (i % 7) * 10 - 30, b"v%d" % i)
        if i % 5 == 0:
            w.delete(b"k1", -30)
        if i % 9 == 0:
            log += w.flush()
    w.expire(-10)
    log += w.flush()
    assert all(len(ck) >= 8 for ck, _ in log)
    fresh = WindowStore(make_backend("b"))
    fresh.restore(log, batch_size=4)
    span = (INT64_MIN, INT64_MAX)
    assert list(fresh.fetch_all(*span)) == list(w.fetch_all(*span))
    assert list(fresh.backend.iter_range(None, None)) == list(w.backend.iter_range(None, None))


def test_window_put_many_delete_many_match_one_by_one(make_backend: MakeBackend) -> None:
    bulk, single = WindowStore(make_backend("a")), WindowStore(make_backend("b"))
    assert bulk.is_empty()
    items = [(b"k%d" % (i % 4), (i % 5) * 10 - 20, b"v%d" % i) for i in range(30)]
    bulk.put_many(items)
    for k, s, v in items:
        single.put(k, s, v)
    assert not bulk.is_empty()
    log_bulk, log_single = bulk.flush(), single.flush()
    gone = [(b"k1", 0), (b"k2", -20), (b"absent", 5)]
    bulk.delete_many(gone)
    for k, s in gone:
        single.delete(k, s)
    assert bulk.take_dirty() == single.take_dirty()
    assert log_bulk == log_single
    span = (INT64_MIN, INT64_MAX)
    assert list(bulk.fetch_all(*span)) == list(single.fetch_all(*span))
    bulk.delete_many([(k, s) for k, s, _ in list(bulk.fetch_all(*span))])
    assert bulk.is_empty()  # deletes in the cache hide what the backend still has


# -- session store -----------------------------------------------------------------------------


def test_session_find_sessions_boundaries(backend: Backend) -> None:
    s = SessionStore(backend)
    s.put(b"u", 0, 10, b"a")
    s.put(b"u", 20, 30, b"b")
    s.put(b"u", 50, 50, b"c")
    s.put(b"v", 0, 100, b"other")
    s.put(b"u\x00", 0, 100, b"prefix-sibling")

    def find(earliest_end: int, latest_start: int) -> list[tuple[int, int]]:
        return [(st, en) for st, en, _ in s.find_sessions(b"u", earliest_end, latest_start)]

    assert find(10, 20) == [(0, 10), (20, 30)]  # end == earliest_end, start == latest_start
    assert find(11, 19) == []
    assert find(11, 20) == [(20, 30)]
    assert find(10, 19) == [(0, 10)]
    assert find(-100, 1000) == [(0, 10), (20, 30), (50, 50)]
    assert find(50, 50) == [(50, 50)]
    assert find(31, 49) == []
    s.flush()
    s.remove(b"u", 20, 30)
    s.put(b"u", 25, 26, b"d")
    assert find(0, 100) == [(0, 10), (25, 26), (50, 50)]
    assert s.get(b"u", 25, 26) == b"d" and s.get(b"u", 20, 30) is None


def test_session_negative_times_and_bad_session(backend: Backend) -> None:
    s = SessionStore(backend)
    s.put(b"u", -30, -20, b"a")
    s.put(b"u", -5, 5, b"b")
    assert [x[:2] for x in s.find_sessions(b"u", -25, 0)] == [(-30, -20), (-5, 5)]
    with pytest.raises(ValueError):
        s.put(b"u", 5, 4, b"x")


def test_session_expire_and_fetch_ending_before(backend: Backend) -> None:
    s = SessionStore(backend)
    s.put(b"a", 0, 10, b"1")
    s.put(b"b", 5, 9, b"2")
    s.flush()
    s.put(b"c", 12, 20, b"3")
    got = [(k, st, en) for k, st, en, _ in s.fetch_all_ending_before(20)]
    assert got == [(b"b", 5, 9), (b"a", 0, 10)]
    assert [x[0] for x in s.fetch_all_ending_before(21)] == [b"b", b"a", b"c"]
    assert s.expire(10) == [(b"b", 5, 9)]
    assert s.expire(21) == [(b"a", 0, 10), (b"c", 12, 20)]
    assert list(s.find_sessions(b"a", INT64_MIN, INT64_MAX)) == []
    records = s.changelog_records(s.take_dirty())
    # a and b reached the changelog (flushed), so they get tombstones; c was put and expired
    # within one commit: the changelog never saw it and gets nothing for it
    assert sorted((ck[:-16], v) for ck, v in records) == [(b"a", None), (b"b", None)]


def test_session_created_and_removed_within_a_commit_leaves_nothing(backend: Backend) -> None:
    """A busy key's session is extended by each record (remove + put under a new end): the
    removed versions must not pile up as tombstones that every later lookup scans."""
    s = SessionStore(backend)
    s.put(b"k", 0, 0, b"v0")
    s.flush()
    for t in range(1, 200):  # extend [0, t-1] to [0, t], as a session window does
        found = list(s.find_sessions(b"k", t - 5, t + 5))
        assert found == [(0, t - 1, b"v%d" % (t - 1))]
        s.remove(b"k", 0, t - 1)
        s.put(b"k", 0, t, b"v%d" % t)
    assert s.dirty_count == 2 * 2  # the committed [0, 0] tombstoned, the live [0, 199]
    records = s.changelog_records(s.take_dirty())
    assert sorted(records) == [
        (b"k" + e + st, v)
        for e, st, v in [
            (encode_ts(0), encode_ts(0), None),
            (encode_ts(199), encode_ts(0), b"v199"),
        ]
    ]


def test_session_changelog_restore_reproduces(make_backend: MakeBackend) -> None:
    s = SessionStore(make_backend("a"))
    log = []
    for i in range(30):
        key = b"k%d" % (i % 4)
        s.put(key, i * 10, i * 10 + (i % 3), b"v%d" % i)
        if i % 7 == 0:
            s.remove(key, i * 10, i * 10 + (i % 3))
        if i % 8 == 0:
            log += s.flush()
    s.expire(50)
    log += s.flush()
    fresh = SessionStore(make_backend("b"))
    fresh.restore(log, batch_size=5)
    assert list(fresh.fetch_all_ending_before(INT64_MAX)) == list(
        s.fetch_all_ending_before(INT64_MAX)
    )
    assert list(fresh.backend.iter_range(None, None)) == list(s.backend.iter_range(None, None))


def test_short_changelog_keys_rejected(backend: Backend) -> None:
    with pytest.raises(StateError):
        WindowStore(backend).restore([(b"short", b"v")])
    with pytest.raises(StateError):
        SessionStore(backend).restore([(b"0123456789", b"v")])
