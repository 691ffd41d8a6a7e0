"""Property test: a KeyValueStore behaves like a dict, with and without commits in between."""

from __future__ import annotations

import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st

from state import Backend, KeyValueStore, open_backend

_keys = st.binary(min_size=0, max_size=3)
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), _keys, st.binary(max_size=4)),
        st.tuples(st.just("delete"), _keys, st.none()),
        st.tuples(st.just("commit"), st.none(), st.none()),
        st.tuples(st.just("take"), st.none(), st.none()),  # taken, write_back later
    ),
    max_size=60,
)


def _check(store: KeyValueStore, model: dict[bytes, bytes]) -> None:
    expected = sorted(model.items())
    assert list(store.all()) == expected
    assert list(store.range(None, None, reverse=True)) == expected[::-1]
    for k in [*list(model)[:5], b"", b"\x00", b"zz"]:
        assert store.get(k) == model.get(k)
    lo, hi = b"\x40", b"\xa0"
    assert list(store.range(lo, hi)) == [(k, v) for k, v in expected if lo <= k < hi]
    assert list(store.prefix(b"\x41")) == [(k, v) for k, v in expected if k[:1] == b"\x41"]


def _run(backend: Backend, ops: list[tuple[str, bytes | None, bytes | None]]) -> None:
    store = KeyValueStore(backend, cache_max_entries=8)
    model: dict[bytes, bytes] = {}
    taken = None
    for op, key, value in ops:
        if op == "put":
            assert key is not None and value is not None
            store.put(key, value)
            model[key] = value
        elif op == "delete":
            assert key is not None
            store.delete(key)
            model.pop(key, None)
        elif op == "take":
            taken = store.take_dirty()
            assert len({k for k, _ in taken}) == len(taken)
        else:
            ops_ = store.take_dirty()
            if taken is not None:
                assert {k for k, _ in taken} <= {k for k, _ in ops_}
                taken = None
            store.write_back(ops_, {"n": b"%d" % len(model)})
        _check(store, model)
    store.write_back(store.take_dirty())
    _check(store, model)
    assert store.dirty_count == 0
    assert list(backend.iter_range(None, None)) == sorted(model.items())


@given(_ops)
@settings(max_examples=200, deadline=None)
def test_kv_matches_dict_memory(ops: list[tuple[str, bytes | None, bytes | None]]) -> None:
    _run(open_backend("memory", None), ops)


@given(_ops)
@settings(max_examples=40, deadline=None)
def test_kv_matches_dict_rocksdb(ops: list[tuple[str, bytes | None, bytes | None]]) -> None:
    with tempfile.TemporaryDirectory() as d:
        backend = open_backend("rocksdb", f"{d}/db")
        try:
            _run(backend, ops)
        finally:
            backend.close()
