"""The demos on the real broker: personalization (one worker and ``--workers 2``), fraud with
``--workers 2`` (``streams run --workers`` processes in one consumer group)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.kafka
REPO = Path(__file__).resolve().parents[2]


def _demo(app: str, bootstrap: str, tmp_path: Path, *args: str) -> str:
    prefix = f"t{uuid.uuid4().hex[:8]}-"  # fresh topics and consumer group on a shared broker
    r = subprocess.run(
        [sys.executable, "-m", app, "--bootstrap", bootstrap, "--prefix", prefix, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        timeout=280,
    )
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-3000:])
    return r.stdout


def _row(out: str, start: str) -> list[str]:
    return next(ln for ln in out.splitlines() if ln.startswith(start)).split()


def _check_personalization(out: str) -> None:
    line = next(ln for ln in out.splitlines() if ln.startswith("sessions"))
    found, total = line.split("(")[1].split(" of the ")[0], line.split(" of the ")[1].split()[0]
    assert found == total  # every true session found exactly, also across workers
    assert int(_row(out, "recommendations emitted")[2].replace(",", "")) > 1_000
    *_, app, baseline = _row(out, "top latent interest covered")
    assert float(app) > float(baseline)


@pytest.mark.parametrize("workers", [1, 2])
def test_personalization_on_kafka(kafka_bootstrap, tmp_path, workers):
    out = _demo(
        "apps.personalization",
        kafka_bootstrap,
        tmp_path,
        "--events",
        "6000",
        "--users",
        "150",
        "--workers",
        str(workers),
        "--state-dir",
        str(tmp_path / "state"),
    )
    _check_personalization(out)
    if workers > 1:
        assert "starting 2 worker processes" in out
    assert out.count("REC u-") >= 3  # shown as they fired


def test_fraud_with_two_workers_on_kafka(kafka_bootstrap, tmp_path):
    out = _demo(
        "apps.fraud_detection",
        kafka_bootstrap,
        tmp_path,
        "--transactions",
        "3000",
        "--workers",
        "2",
        "--state-dir",
        str(tmp_path / "state"),
    )
    assert "starting 2 worker processes" in out
    assert _row(out, "blocklisted_merchant")[3:5] == ["1.00", "1.00"]
    assert _row(out, "impossible_travel")[3:5] == ["1.00", "1.00"]
    assert "3 malformed records went to the dead-letter topic" in out
