"""Two checkouts of this repository side by side on the same benchmarks, in the same run.

A refactor must leave speed alone; the machines are noisy, so the two sides run interleaved
(before, after, before, after, ...), each in its own process with ``PYTHONPATH`` set to its
checkout, and the result is the ratio of medians::

    git worktree add /tmp/before <commit>
    python -m bench nexmark generate --events 200000 --seed 1 --out /tmp/nx200k.jsonl
    python -m bench revisions --before /tmp/before --after . --input /tmp/nx200k.jsonl

Measured: ``bench micro`` (engine records per CPU second) and ``bench nexmark run`` CPU seconds
for each query and mode asked. ``after/before`` above 1 means the after side is faster.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path


def _run(checkout: Path, args: Sequence[str]) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    out = subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = [ln for ln in out.splitlines() if ln.startswith("{")][-1]
    result: dict[str, object] = json.loads(line)
    return result


def _cases(
    queries: Sequence[str], modes: Sequence[str], data: str, micro_records: int
) -> list[tuple[str, list[str]]]:
    micro = ["micro", "--repeat", "1", "--records", str(micro_records)]
    cases = [("micro (engine records/CPU s)", micro)]
    for q in queries:
        for mode in modes:
            args = ["nexmark", "run", "--query", q, "--input", data, "--mode", mode]
            cases.append((f"nexmark {q} {mode} (CPU s)", args))
    return cases


def _metric(name: str, result: dict[str, object]) -> float:
    key = "engine_records_per_cpu_s" if name.startswith("micro") else "cpu_s"
    value = result[key]
    assert isinstance(value, int | float)
    return float(value)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench revisions", description=__doc__)
    p.add_argument("--before", type=Path, required=True, help="checkout measured first")
    p.add_argument("--after", type=Path, required=True, help="checkout measured second")
    p.add_argument("--input", required=True, help="Nexmark events .jsonl")
    p.add_argument("--queries", default="q1,q5,q7")
    p.add_argument("--modes", default="row,columnar")
    p.add_argument("--rounds", type=int, default=3, help="runs per side, interleaved")
    p.add_argument("--micro-records", type=int, default=1_000_000)
    p.add_argument("--record", action="store_true", help="append the table to bench/RESULTS.md")
    a = p.parse_args(argv)
    sides = {"before": a.before.resolve(), "after": a.after.resolve()}
    data = str(Path(a.input).resolve())
    cases = _cases(a.queries.split(","), a.modes.split(","), data, a.micro_records)
    rows = []
    for name, args in cases:
        got: dict[str, list[float]] = {"before": [], "after": []}
        for _ in range(a.rounds):
            for side, checkout in sides.items():
                got[side].append(_metric(name, _run(checkout, args)))
        b, f = statistics.median(got["before"]), statistics.median(got["after"])
        # records/s: higher is better; CPU seconds: lower is better
        speed = f / b if name.startswith("micro") else b / f
        rows.append((name, got["before"], got["after"], speed))
        print(json.dumps({"case": name, **got, "after_speed_vs_before": round(speed, 3)}))
    table = _table(a, rows)
    print(table)
    if a.record:
        with (Path(__file__).parent / "RESULTS.md").open("a") as f:
            f.write("\n" + table)
    return 0


def _table(a: argparse.Namespace, rows: list[tuple[str, list[float], list[float], float]]) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())

    def fmt(xs: list[float]) -> str:
        return ", ".join(f"{x:,.0f}" if x > 100 else f"{x:.3f}" for x in xs)

    lines = [
        f"## revisions: {a.before} vs {a.after} — {stamp}",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}. Command: `python -m bench revisions --before "
        f"{a.before} --after {a.after} --input {a.input} --queries {a.queries} "
        f"--modes {a.modes} --rounds {a.rounds}` (interleaved; speed = after vs before, "
        "medians; > 1 is faster).",
        "",
        "| case | before | after | speed |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {n} | {fmt(b)} | {fmt(f)} | {s:.2f}x |" for n, b, f, s in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
