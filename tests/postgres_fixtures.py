"""pytest plugin: a real PostgreSQL server for tests marked ``@pytest.mark.postgres``.

* ``postgres_dsn`` (session): ``$STREAMS_PG_DSN`` if set, else a throw-away server started once
  per session with ``scripts/postgres/postgres start`` in a private state dir (Debian's
  ``postgresql`` binaries, 127.0.0.1, trust auth) and stopped, its data deleted, at session end.
  Without PostgreSQL binaries (or when the server fails to start) the test is skipped; under
  ``CI=true`` it fails, and the script may ``apt-get install postgresql`` first.
* ``pg_schema``: a fresh schema for one test (dropped after), so tests never share tables.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PG_SCRIPT = REPO_ROOT / "scripts" / "postgres" / "postgres"
START_TIMEOUT_S = 240  # apt-get install on a fresh CI machine included


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "postgres: needs a real PostgreSQL server (started by scripts/postgres/postgres)"
    )


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def _unavailable(reason: str) -> None:
    """Skip locally; under CI=true a missing server is an error, never a silent skip."""
    if _in_ci():
        pytest.fail(f"{reason} (CI=true, so this is a failure rather than a skip)", pytrace=False)
    pytest.skip(reason)


def _script(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(PG_SCRIPT), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def postgres_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A libpq connection string (``postgresql://postgres@127.0.0.1:PORT/postgres``)."""
    external = os.environ.get("STREAMS_PG_DSN", "").strip()
    if external:
        yield external
        return
    home = tmp_path_factory.mktemp("postgres-server")
    args = ["start", "--home", str(home)] + (["--install"] if _in_ci() else [])
    try:
        res = _script(*args, timeout=START_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        _script("stop", "--home", str(home), timeout=90)
        _unavailable(f"PostgreSQL did not start within {START_TIMEOUT_S}s: {exc}")
        raise AssertionError("unreachable") from exc
    if res.returncode != 0 or not res.stdout.strip():
        _script("stop", "--home", str(home), timeout=90)
        _unavailable(
            f"PostgreSQL failed to start (scripts/postgres/postgres start exit {res.returncode}):"
            f"\n{res.stderr.strip()}"
        )
    dsn = (home / "dsn").read_text().strip()
    try:
        yield dsn
    finally:
        stop = _script("stop", "--home", str(home), timeout=90)
        if stop.returncode != 0:
            sys.stderr.write(f"scripts/postgres/postgres stop failed: {stop.stderr}\n")


@pytest.fixture
def pg_schema(postgres_dsn: str) -> Iterator[str]:
    """A fresh schema, dropped (with its tables) after the test."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    try:
        yield name
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
