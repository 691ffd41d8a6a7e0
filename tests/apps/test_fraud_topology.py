"""The fraud topology finds the injected fraud (scored against the generator's ground truth)."""

import subprocess
import sys
from pathlib import Path

import pytest

import streams as st
from apps.fraud_detection.__main__ import score
from apps.fraud_detection.generator import generate
from apps.fraud_detection.model import PRIOR, risk
from apps.fraud_detection.topology import ALERTS, BLOCKLIST, TRANSACTIONS, build_topology

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def scored():
    ds = generate(20_000, seed=3)
    d = st.TopologyTestDriver(build_topology(), partitions=2)
    for m in sorted(ds.blocklist):
        d.pipe(BLOCKLIST, {"blocked": True}, key=m)
    d.pipe_many(TRANSACTIONS, [(tx["card_id"], tx, tx["ts"]) for tx in ds.transactions])
    d.end_of_input()
    return {row[0]: row for row in score(ds, d.read_values(ALERTS))}


def test_exact_rules_are_exact(scored):
    for rule in ("blocklisted_merchant", "impossible_travel"):
        _, _, _, precision, recall, _ = scored[rule]
        assert precision == 1.0 and recall == 1.0, rule


def test_statistical_rules_are_useful(scored):
    _, _, _, p, r, caught = scored["amount_spike"]
    assert p >= 0.6 and r >= 0.8
    _, _, _, p, r, caught = scored["card_testing"]
    found, total = map(int, caught.split("/"))
    assert p >= 0.7 and found >= 0.9 * total  # bursts are caught, if not their first records
    _, _, _, p, r, _ = scored["all rules"]
    assert p >= 0.75 and r >= 0.75


def test_every_alert_is_scored_by_the_model_service():
    # (through map_async: the client starts its own aiohttp service on the driver's loop)
    ds = generate(3_000, seed=5)
    with st.TopologyTestDriver(build_topology()) as d:
        for m in sorted(ds.blocklist):
            d.pipe(BLOCKLIST, {"blocked": True}, key=m)
        d.pipe_many(TRANSACTIONS, [(tx["card_id"], tx, tx["ts"]) for tx in ds.transactions])
        d.end_of_input()
        alerts = d.read_values(ALERTS)
    assert alerts
    for a in alerts:
        assert a["risk"] == risk({k: v for k, v in a.items() if k != "risk"}) >= PRIOR[a["rule"]]


def test_the_demo_runs_end_to_end():
    r = subprocess.run(
        [sys.executable, "-m", "apps.fraud_detection", "--transactions", "3000"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "transactions/s" in r.stdout and "blocklisted_merchant" in r.stdout
    assert "3 malformed records went to the dead-letter topic" in r.stdout  # 0.1% of 3,000
    assert "risk model service on http://127.0.0.1:" in r.stdout and " risk=" in r.stdout


@pytest.mark.kafka
def test_the_demo_runs_on_kafka(kafka_bootstrap, tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "apps.fraud_detection",
            "--transactions",
            "3000",
            "--bootstrap",
            kafka_bootstrap,
            "--state-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        timeout=240,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("blocklisted_merchant"))
    assert line.split()[3:5] == ["1.00", "1.00"]  # precision and recall on the real broker
