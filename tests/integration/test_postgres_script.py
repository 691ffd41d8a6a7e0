"""scripts/postgres/postgres: start prints the address, the server takes connections on
127.0.0.1 only, status and dsn say where it is, stop deletes its data (a throw-away server)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.postgres_fixtures import PG_SCRIPT

pytestmark = pytest.mark.postgres
psycopg = pytest.importorskip("psycopg")


def script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(PG_SCRIPT), *args], capture_output=True, text=True, timeout=120
    )


def test_start_status_dsn_stop(postgres_dsn: str, tmp_path: Path) -> None:
    # (postgres_dsn: the session's server started, so binaries exist; this one is a second)
    home = str(tmp_path / "pg")
    started = script("start", "--home", home)
    try:
        assert started.returncode == 0, started.stderr
        address = started.stdout.strip()
        assert address.startswith("127.0.0.1:") and address.count("\n") == 0
        status = script("status", "--home", home)
        assert status.returncode == 0 and f"running {address}" in status.stdout
        dsn = script("dsn", "--home", home).stdout.strip()
        assert dsn == f"postgresql://postgres@{address}/postgres"
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
            assert conn.execute("SELECT 1 + 1").fetchone() == (2,)
        again = script("start", "--home", home)  # already running: the same address
        assert again.returncode == 0 and again.stdout.strip() == address
        data = Path((Path(home) / "datadir").read_text().strip())
        assert data.is_dir()
    finally:
        stopped = script("stop", "--home", home)
    assert stopped.returncode == 0, stopped.stderr
    assert script("status", "--home", home).returncode == 3
    assert not data.exists()  # thrown away
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn, connect_timeout=2)
