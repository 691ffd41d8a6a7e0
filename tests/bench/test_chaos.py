"""The short chaos runs in CI, on a real broker of the harness' own (it restarts it).

Exactly-once: 100K records, 3 workers, 3 SIGKILLs with restarts, a hard broker restart and a
rebalance storm, all in one run; every window exactly once with the exact count, per-user
counts exact and never repeated. At-least-once: the same chaos over 30K records; nothing lost.
The full run is ``python -m bench chaos`` (1M records, 5 kills; results in bench/RESULTS.md).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bench.chaos.harness import Options, run

pytestmark = pytest.mark.kafka


def test_exactly_once_through_kills_a_broker_restart_and_a_rebalance_storm(
    kafka_bootstrap: str,  # (only for its skip-or-fail rule: the harness starts its own broker)
    tmp_path: Path,
) -> None:
    opts = Options(records=100_000, rate=10_000, kills=3, log_dir=str(tmp_path))
    report = asyncio.run(run(opts))
    assert report.ok, report.summary()
    assert report.lost == report.duplicated == report.wrong == 0
    assert report.users_wrong == report.users_regressions == 0
    assert report.windows_seen == report.windows_expected == 800
    assert len(report.recoveries_s) == 3
    assert report.broker_restart_s is not None and report.storm_joins > 0


def test_at_least_once_loses_nothing_through_the_same_chaos(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    opts = Options(
        records=30_000, rate=5_000, kills=2, guarantee="at_least_once", log_dir=str(tmp_path)
    )
    report = asyncio.run(run(opts))
    assert report.ok, report.summary()
    assert report.lost == report.wrong == report.users_wrong == 0
    assert report.windows_seen == report.windows_expected == 240
    assert report.broker_restart_s is not None and report.storm_joins > 0
