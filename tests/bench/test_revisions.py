"""bench revisions: both checkouts run every case, interleaved, and the ratio is of medians."""

import json
import subprocess
import sys
from pathlib import Path

from bench import revisions

ROOT = Path(__file__).resolve().parents[2]


def test_two_checkouts_side_by_side(tmp_path, capsys):
    data = tmp_path / "nx.jsonl"
    subprocess.run(
        [sys.executable, "-m", "bench", "nexmark", "generate", "--events", "2000", "--out", data],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    argv = ["--before", str(ROOT), "--after", str(ROOT), "--input", str(data)]
    argv += ["--queries", "q1", "--modes", "row", "--rounds", "2", "--micro-records", "20000"]
    assert revisions.main(argv) == 0
    out = [json.loads(ln) for ln in capsys.readouterr().out.splitlines() if ln.startswith("{")]
    assert [r["case"] for r in out] == ["micro (engine records/CPU s)", "nexmark q1 row (CPU s)"]
    for r in out:
        assert len(r["before"]) == len(r["after"]) == 2
        assert all(x > 0 for x in r["before"] + r["after"])
        lo, hi = sorted(r["before"]), sorted(r["after"])
        expect = (sum(hi) / sum(lo)) if r["case"].startswith("micro") else sum(lo) / sum(hi)
        assert abs(r["after_speed_vs_before"] - round(expect, 3)) < 1e-3
