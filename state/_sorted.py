"""A typed view of ``sortedcontainers.SortedDict`` (the package ships no type hints).

>>> m: SortedMap[bytes] = new_sorted_map()
>>> m[b"b"] = b"2"; m[b"a"] = b"1"
>>> list(m.irange(b"a", b"b", (True, False), False))
[b'a']
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol, TypeVar, cast

from sortedcontainers import SortedDict, SortedList  # type: ignore[import-untyped]

V = TypeVar("V")
T = TypeVar("T")


class SortedMap(Protocol[V]):
    """The subset of ``SortedDict`` the state layer uses: a dict with ordered key ranges."""

    def __getitem__(self, key: bytes, /) -> V: ...

    def __setitem__(self, key: bytes, value: V, /) -> None: ...

    def __delitem__(self, key: bytes, /) -> None: ...

    def __contains__(self, key: object, /) -> bool: ...

    def __len__(self) -> int: ...

    def pop(self, key: bytes, default: T, /) -> V | T: ...

    def clear(self) -> None: ...

    def update(self, other: Iterable[tuple[bytes, V]], /) -> None: ...

    def items(self) -> Iterable[tuple[bytes, V]]: ...

    def irange(
        self,
        minimum: bytes | None,
        maximum: bytes | None,
        inclusive: tuple[bool, bool],
        reverse: bool,
    ) -> Iterator[bytes]: ...


class SortedKeys(Protocol):
    """The subset of ``SortedList`` used for the cache's lazily built key index."""

    def __len__(self) -> int: ...

    def update(self, keys: Iterable[bytes], /) -> None: ...

    def remove(self, key: bytes, /) -> None: ...

    def irange(
        self,
        minimum: bytes | None,
        maximum: bytes | None,
        inclusive: tuple[bool, bool],
        reverse: bool,
    ) -> Iterator[bytes]: ...


def new_sorted_keys() -> SortedKeys:
    """An empty sorted list of keys (bulk ``update`` sorts once instead of inserting one by one)."""
    return cast("SortedKeys", SortedList())


def new_sorted_map() -> SortedMap[V]:
    """An empty sorted map: O(log n) insert/delete, dict-speed lookups, ordered ranges."""
    return cast("SortedMap[V]", SortedDict())
