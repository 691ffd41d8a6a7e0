"""Fixtures for the store contract tests: every test runs on both backends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from state import Backend, open_backend

MakeBackend = Callable[..., Backend]


@pytest.fixture(params=["memory", "rocksdb"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_backend(kind: str, tmp_path: Path) -> Iterator[MakeBackend]:
    """``make_backend(name="db")`` opens a fresh backend (rocksdb: under tmp_path/name)."""
    opened: list[Backend] = []

    def make(name: str = "db") -> Backend:
        path = str(tmp_path / name) if kind == "rocksdb" else None
        b = open_backend(kind, path)  # type: ignore[arg-type]
        opened.append(b)
        return b

    yield make
    for b in opened:
        b.close()


@pytest.fixture
def backend(make_backend: MakeBackend) -> Backend:
    return make_backend()
