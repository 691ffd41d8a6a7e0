"""The window-object view: same contents, close order and changelog (less tombstones of windows
it never had) as the bytes store alone, on both backends."""

from __future__ import annotations

import pickle
import random

import pytest

from state import WindowStore
from state.encoding import INT64_MAX, INT64_MIN
from state.window_objects import MISSING, ObjectWindows

from .conftest import MakeBackend

SPAN = (INT64_MIN, INT64_MAX)


def _contents(w: WindowStore) -> list[tuple[bytes, int, object]]:
    return [(k, s, pickle.loads(v)) for k, s, v in w.fetch_all(*SPAN)]


@pytest.mark.parametrize("max_objects", [500_000, 8])  # (8: the view reads through the store)
def test_view_matches_the_bytes_store_step_by_step(
    make_backend: MakeBackend, max_objects: int
) -> None:
    """Random puts (and merges), closes and commits through the view and straight on a bytes
    store give the same closed windows (in order), changelog records and store contents."""
    rng = random.Random(5)
    view = ObjectWindows(WindowStore(make_backend("a")), max_objects=max_objects)
    ref = WindowStore(make_backend("b"))
    logged: dict[bytes, bytes | None] = {}  # the changelog's latest record per key
    for step in range(300):
        op = rng.random()
        if op < 0.7:
            pairs = [(b"k%d" % rng.randrange(6), rng.randrange(10) * 10) for _ in range(5)]
            pairs = list(dict.fromkeys(pairs))
            want = [ref.get(k, s) for k, s in pairs]
            old = [MISSING if b is None else pickle.loads(b) for b in want]
            new = [[step] if a is MISSING else [a[0] + step] for a in old]
            if rng.random() < 0.5:
                assert view.get_many(pairs) == old
                view.put_many(zip(pairs, new, strict=True))
            else:  # lookup, merge and write in one (a columnar batch's partials)
                got = view.merge_one(pairs, [step] * len(pairs), lambda a, p: a + p, lambda: 0)
                assert got == new
            for (k, s), acc in zip(pairs, new, strict=True):
                ref.put(k, s, pickle.dumps(acc, protocol=5))
        elif op < 0.85:
            last = rng.randrange(-1, 10) * 10
            want = [(k, s, pickle.loads(v)) for k, s, v in ref.fetch_all(INT64_MIN, last)]
            ref.expire(last + 1)
            assert view.close_until(last) == want
        else:
            view.flush_objects()
            assert view.dirty_count == 0
            got_log, want_log = view.raw.flush(), ref.flush()
            # the same records, less the tombstones of windows the changelog never had
            missing = set(want_log) - set(got_log)
            assert all(v is None and logged.get(ck) is None for ck, v in missing)
            assert [r for r in want_log if r not in missing] == got_log
            logged.update(got_log)
            assert _contents(view.raw) == _contents(ref)


def test_view_loads_a_restored_store_and_reads_through_when_too_big(
    make_backend: MakeBackend,
) -> None:
    raw = WindowStore(make_backend("a"))
    raw.put_many([(b"k%d" % i, 10 * (i % 3), pickle.dumps([i])) for i in range(9)])
    raw.flush()
    small = ObjectWindows(raw)  # holds them all: closing needs no scan
    assert small.get(b"k4", 10) == [4] and small.get(b"k4", 20) is MISSING
    big = ObjectWindows(WindowStore(raw.backend), max_objects=4)  # reads through the store
    assert big.get(b"k4", 10) == [4]
    big.put_many([((b"k4", 10), [40]), ((b"new", 0), [1])])
    assert [(k, s, a) for k, s, a in big.close_until(10)] == [
        (b"k0", 0, [0]),
        (b"k3", 0, [3]),
        (b"k6", 0, [6]),
        (b"new", 0, [1]),
        (b"k1", 10, [1]),
        (b"k4", 10, [40]),
        (b"k7", 10, [7]),
    ]
    big.flush_objects()
    assert [(k, s) for k, s, _ in big.raw.fetch_all(*SPAN)] == [
        (b"k2", 20),
        (b"k5", 20),
        (b"k8", 20),
    ]


def test_discard_drops_uncommitted_objects(make_backend: MakeBackend) -> None:
    raw = WindowStore(make_backend())
    view = ObjectWindows(raw)
    view.put_many([((b"a", 0), [1])])
    view.flush_objects()
    raw.write_back(raw.take_dirty())
    view.put_many([((b"a", 0), [2]), ((b"b", 0), [3])])
    assert view.dirty_count == 2
    view.discard_objects()  # a crash: back to what was committed
    assert view.dirty_count == 0
    assert view.get_many([(b"a", 0), (b"b", 0)]) == [[1], MISSING]
