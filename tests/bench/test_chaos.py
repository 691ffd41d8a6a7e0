"""The short chaos run in CI: exactly-once through SIGKILLs of workers, on the real broker.

3 workers, 30K records, 3 SIGKILLs with restarts; every window exactly once with the exact
count, per-user counts exact and never repeated. The broker restart and the rebalance storm of
the full run (``python -m bench chaos``) are left out here: combined with kills they still lose
the last windows (see bench/RESULTS.md and issue 10's note).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bench.chaos.harness import Options, run

pytestmark = pytest.mark.kafka


def test_exactly_once_through_worker_kills(kafka_bootstrap: str, tmp_path: Path) -> None:
    opts = Options(
        records=30_000,
        rate=5_000,
        kills=3,
        broker_restart=False,
        storm=False,
        bootstrap=kafka_bootstrap,
        log_dir=str(tmp_path),
    )
    report = asyncio.run(run(opts))
    assert report.ok, report.summary()
    assert report.lost == report.duplicated == report.wrong == 0
    assert report.windows_seen == report.windows_expected > 0
    assert len(report.recoveries_s) == 3
